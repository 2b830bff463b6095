"""The operator dashboard at /dashboard (docs/dashboard.md): server-rendered pages over
the ledger and the usage store, signed in with a tenant's API key."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.dashboard import actions, pages
from api.dashboard.render import STATIC, page
from api.dashboard.session import CsrfRefused, SignInRequired
from api.errors import error_body


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages, actions and static files on `app`."""
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _: SignInRequired) -> Response:
        if request.url.path.startswith("/dashboard/data/"):
            body = error_body("unauthorized", "sign in to the dashboard first")
            return JSONResponse(body, status_code=401)
        target = request.url.path if request.method == "GET" else "/dashboard/usage"
        return RedirectResponse(f"/dashboard/sign-in?next={target}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return page(request, "refused.html", status_code=403, message=str(exc))
