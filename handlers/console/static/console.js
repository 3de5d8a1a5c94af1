// "Needs teaching": rewrite the YAML snippet for the intent chosen, and copy it in one click.
// The page works without this script (the snippet is already there to select and copy).
(function () {
  function snippet(intent, question) {
    return "# knowledge/examples/" + intent + ".yaml, under examples:\n  - " + JSON.stringify(question.split(/\s+/).join(" ")) + "\n";
  }
  document.querySelectorAll(".teach > li").forEach(function (item) {
    var select = item.querySelector("select.intent");
    var code = item.querySelector("pre.yaml code");
    var button = item.querySelector("button.copy");
    var said = item.querySelector(".copied");
    select.addEventListener("change", function () {
      code.textContent = snippet(select.value, select.dataset.question);
    });
    button.addEventListener("click", function () {
      var text = code.textContent;
      var done = function () { said.textContent = "Copied."; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
      } else { fallback(text); done(); }
    });
  });
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (e) { /* the snippet stays selectable */ }
    document.body.removeChild(area);
  }
})();
