"""The token types, one package each: the factor (enrollment and code check), its
delivery (SMS worker, push worker) and its provider and protocol code.

``base`` is the plug-in point they all implement.
"""
