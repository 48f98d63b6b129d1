"""Renderers: the only layer that knows about colours, tables and Markdown. They read facts, never probe."""
