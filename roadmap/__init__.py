"""o1-roadmap: policy initialization, reward design, search and learning on the Hugging Face stack.

Importing ``roadmap`` is cheap: subpackages load torch-heavy code only when used.
"""
