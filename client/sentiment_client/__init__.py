"""The 0.1 name of this client; everything now lives in :mod:`bundle_client` (see CHANGELOG.md).

``from sentiment_client import SentimentClient`` keeps working: the names are the same objects.
"""

from bundle_client import *  # noqa: F403
from bundle_client import AsyncSentimentClient, SentimentAPIError, SentimentClient, __all__, __version__  # noqa: F401
