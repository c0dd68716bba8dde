"""The baseline: a bare Flask endpoint served under the same gunicorn settings as the app."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok"
