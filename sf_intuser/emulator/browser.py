"""A "browser" for ``sf org login web`` against the emulated org, so that a login there ends with a
refresh token (the OAuth 2.0 web server flow), as a Dev Hub login on a developer's machine does.

``sf org login web`` opens the authorize URL with the ``open`` package, which on Linux runs
``xdg-open``, which runs ``$BROWSER URL``. Set ``BROWSER`` to this module (``python -m
sf_intuser.emulator.browser``): it returns at once, as a browser does, and in the background loads
the URL and follows its redirects: the emulated org's ``/services/oauth2/authorize`` answers with a
one-time code at sf's local redirect URL (``http://localhost:1717/OauthRedirect``), which exchanges it
for a refresh token, then shows its success page. Only URLs on this machine are loaded.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

LOCAL = ("127.0.0.1", "localhost", "::1")


class _Manual(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None   # followed by hand, so "localhost" can be pinned to IPv4 (sf listens there)


def follow(url: str, hops: int = 6) -> None:
    opener = urllib.request.build_opener(_Manual)
    for _ in range(hops):
        if urllib.parse.urlsplit(url).hostname not in LOCAL:
            return
        try:
            opener.open(url, timeout=60).read()
            return
        except urllib.error.HTTPError as exc:
            loc = exc.headers.get("Location")
            if exc.code not in (301, 302, 303, 307, 308) or not loc:
                return
            url = urllib.parse.urljoin(url, loc).replace("//localhost:", "//127.0.0.1:")
        except OSError:
            return


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sf_intuser.emulator.browser URL", file=sys.stderr)
        return 2
    if os.fork() != 0:
        return 0                      # the "browser" has opened: sf goes on to wait for the redirect
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    time.sleep(1.0)                   # sf listens for the redirect once the browser has started
    follow(argv[0])
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
