"""govern's engine: the pure pipeline from mesh to plan, and the edges that feed it.

load → directory → approvals → evaluate → desired → actual → diff → plan → apply
"""

__version__ = "0.1.0"
