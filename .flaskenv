# Read by the `flask` command (python-dotenv) when run from the project folder; gunicorn ignores it.
FLASK_APP=wsgi
FLASK_APP_ENV=development
