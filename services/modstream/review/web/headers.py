"""Security headers on every response of the dashboard: one small, pure ASGI middleware.

It wraps the whole application (outside Starlette's error middleware too), so pages,
redirects, errors (404, 403, 422, 429 and the plain 500), static files, images and the JSON
API all carry the same headers:

- a Content-Security-Policy that lets a page load only the dashboard's own scripts, styles
  and images: no inline script, no ``style`` attribute, no ``on*`` handler, no framing,
  forms post only back to the dashboard;
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``;
- ``X-Content-Type-Options: nosniff``: an image under review is served with the type its
  magic bytes say, and a polyglot (a GIF that is also JavaScript) is never run as a script;
- ``Referrer-Policy: no-referrer``: job ids in URLs stay here;
- ``Cache-Control: no-store`` unless the response chose its own (static files revalidate).
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# Static files are the same for everyone and carry an ETag: a browser may keep them, but
# asks again each time (a new release's script is never stale). Everything else may show
# review content (pages, images, API answers): never stored.
STATIC_CACHE = "no-cache"
DEFAULT_CACHE = "no-store"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, static_prefix: str = "/static/") -> None:
        self.app = app
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = STATIC_CACHE if scope["path"].startswith(self.static_prefix) else DEFAULT_CACHE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value  # always ours: a route cannot weaken them
                if "cache-control" not in headers:
                    headers["Cache-Control"] = cache
            await send(message)

        await self.app(scope, receive, send_with_headers)
