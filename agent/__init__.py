"""ald-agent: the edge agent between an ALD reactor's PLC and Supabase."""

__version__ = "0.1.0"
__all__ = ["__version__"]
