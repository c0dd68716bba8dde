"""gunicorn settings for the two-worker servers of these tests: the app is imported once, in the master, and each
worker is forked from it (instead of importing the app again: ~2.5 s of CPU per worker)."""

preload_app = True


def post_fork(server, worker) -> None:
    """A connection must never be used by two processes: each worker starts with an empty pool of its own. The
    master's connections, if it opened any, stay open for the master (close=False)."""
    from core.extensions import db

    app = server.app.wsgi()
    with app.app_context():
        db.engine.dispose(close=False)
