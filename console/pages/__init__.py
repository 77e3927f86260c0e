"""The console pages: each exposes PATH, TITLE, layout(**query) and register_callbacks(app)."""
