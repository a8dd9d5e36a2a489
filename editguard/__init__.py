"""editguard: a pytest gate that stops an edited language model from shipping when the edit damaged its
general abilities.  The plugin lives in ``editguard.plugin``, the gate's tests in ``editguard.gate``."""

__version__ = "0.1.0"
