"""The access-request workflow as a service: the rules shared by the CLI and the server
(``workflow``), the authorisation policy client (``authz``), optional notifications
(``notify``), and ``govern serve``: a FastAPI app (``app.create_app``) with a JSON API under
/api (``api``) and server-rendered pages for owners (``web``), signed in through the
directory (``signin``, throttled after failures: ``throttle``), with server-side sessions
(``sessions``) and session and CSRF protection (``security``); ``--dev`` listens on
loopback only (``loopback``).
"""
