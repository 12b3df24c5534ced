"""The offline side of deepjam: corpora, environment, reward, style model, DQN, evaluation.

Depends on ``exports``, never on ``live_agent``. Modules that need torch import it themselves;
importing this package does not.
"""
