"""The memory browser: ``headroom-mcp ui`` on loopback, and ``/ui`` on a team server.

``app`` holds the routes (one app factory for both servers), ``access`` who a request is,
``views`` what each route computes from the store's methods, ``serve`` the ``ui`` verb, and
``static/`` the page itself: plain HTML, CSS and JavaScript, no build step, nothing fetched
from elsewhere at run time.
"""
