"""Text -> intents + facts."""
from qopi_bot.understanding.reader import Understanding, understand

__all__ = ["Understanding", "understand"]
