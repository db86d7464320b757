"""Sample inputs shared by the API's examples (Swagger "Try it out"), the tests, the client and load tests."""

POSITIVE = "A gorgeous, witty, seductive movie."
NEGATIVE = "The plot is a tired mess and the jokes fall flat."
MIXED = "The first hour drags, but the finale is genuinely moving."

TEXTS = [POSITIVE, NEGATIVE, MIXED]

# Small labelled set for tests: clear cases any reasonable sentiment model gets right.
LABELLED = [
    ("a gorgeous, witty film with a wonderful cast", "positive"),
    ("one of the best movies of the year, moving and funny", "positive"),
    ("a delightful, beautifully acted triumph", "positive"),
    ("an utterly boring, stupid and pointless mess", "negative"),
    ("the worst film i have seen, dull and lifeless", "negative"),
    ("a tedious, badly written disaster", "negative"),
]
