"""The static site ships inside the distribution and is found with no setting; a wrong
PATRONPAY_SITE_DIR, or an installation without its pages, stops start-up with one line."""

import os
import shutil
import tomllib
from pathlib import Path

import httpx
import pytest

from kiosk import settings as kiosk_settings
from kiosk.settings import KioskConfigError, load_kiosk_settings
from patronpay import site_files
from patronpay.cli import main
from patronpay.site_files import packaged_site
from proxy.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"

PROXY_ENV = {
    "PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu",
    "PATRONPAY_SECRET_KEYS": "k" * 32,
    "PATRONPAY_ALMA_API_URL": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
    "PATRONPAY_ALMA_API_KEY": "l7xx-real-key",
    "PATRONPAY_CASHNET_CHECKOUT_URL": "https://commerce.cashnet.com/LIBFINES",
    "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
    "PATRONPAY_CASHNET_POSTBACK_TOKEN": "t" * 40,
}
KIOSK_ENV = {
    "PATRONPAY_KIOSK_ID": "branch-1",
    "PATRONPAY_KIOSK_SECRET": "s" * 40,
    "PATRONPAY_KIOSK_PROXY_URL": "https://pay.library.example.edu",
}


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """`patronpay ARGS` with exactly `env` as its PATRONPAY_* environment: (exit code, stderr)."""
    def run(env: dict[str, str], *argv: str) -> tuple[int, str]:
        for name in list(os.environ):
            if name.startswith("PATRONPAY_") or name in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main(list(argv))
        return code, capsys.readouterr().err
    return run


def a_copy_of_the_site(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(SITE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_editable_install_serves_the_working_tree_site():
    assert packaged_site().resolve() == SITE


def test_the_proxy_serves_the_installed_site_with_no_setting():
    assert load_settings(PROXY_ENV).site_dir.resolve() == SITE


def test_every_file_of_the_site_is_in_the_package_data():
    """A file type the globs miss would be left out of the wheel (CI's wheel smoke test checks
    the wheel itself)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["patronpay_site"]
    shipped = {path for pattern in globs for path in SITE.glob(pattern)}
    files = {path for path in SITE.rglob("*")
             if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py"}
    assert sorted(str(path.relative_to(SITE)) for path in files - shipped) == []


def test_a_site_dir_setting_replaces_the_pages(deploy, tmp_path):
    custom = a_copy_of_the_site(tmp_path)
    (custom / "index.html").write_text("<!doctype html><title>Our own fines page</title>")
    deployment = deploy(site_dir=str(custom))
    page = httpx.get(deployment.url + "/", timeout=15.0)
    assert page.status_code == 200
    assert "Our own fines page" in page.text


def wrong_site_dir(tmp_path: Path, mistake: str) -> Path:
    if mistake == "a file":
        (tmp_path / "notes.txt").write_text("")
        return tmp_path / "notes.txt"
    if mistake == "index.html is a folder":
        (tmp_path / "index.html").mkdir()
    return tmp_path / "nowhere" if mistake == "missing" else tmp_path


@pytest.mark.parametrize("mistake, reason", [
    ("missing", "there is no folder"),
    ("a file", "is not a folder"),
    ("an empty folder", "has no index.html: it is not a patronpay site folder"),
    ("index.html is a folder", "cannot be read: Is a directory"),
])
def test_a_wrong_site_dir_stops_start_up_with_one_line(run_cli, tmp_path, mistake, reason):
    folder = wrong_site_dir(tmp_path, mistake)
    with pytest.raises(ConfigError, match="PATRONPAY_SITE_DIR is not valid: ") as raised:
        load_settings(PROXY_ENV | {"PATRONPAY_SITE_DIR": str(folder)})
    assert reason in str(raised.value) and str(folder) in str(raised.value)

    code, err = run_cli(PROXY_ENV | {"PATRONPAY_SITE_DIR": str(folder)}, "serve")
    assert code == 2
    assert err.splitlines() == [f"patronpay: configuration error: {raised.value}"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_an_unreadable_site_dir_stops_start_up(tmp_path):
    custom = a_copy_of_the_site(tmp_path)
    custom.chmod(0)
    try:
        with pytest.raises(ConfigError, match="PATRONPAY_SITE_DIR is not valid: .* cannot be "
                                              "read: Permission denied"):
            load_settings(PROXY_ENV | {"PATRONPAY_SITE_DIR": str(custom)})
    finally:
        custom.chmod(0o755)


def test_an_installation_without_its_site_stops_serve_and_kiosk_with_one_line(
        run_cli, monkeypatch):
    monkeypatch.setattr(site_files, "PACKAGE", "patronpay_site_not_installed")

    code, err = run_cli(PROXY_ENV, "serve")
    assert code == 2
    assert err.splitlines() == [
        "patronpay: configuration error: PATRONPAY_SITE_DIR is not set and the site installed "
        "with patronpay cannot be served: the package patronpay_site_not_installed is not "
        "installed; reinstall patronpay or set PATRONPAY_SITE_DIR"]

    code, err = run_cli(KIOSK_ENV, "kiosk")
    assert code == 2
    assert err.splitlines() == [
        "patronpay: configuration error: the kiosk pages installed with patronpay cannot be "
        "served: the package patronpay_site_not_installed is not installed; reinstall "
        "patronpay"]


def test_the_kiosk_agent_needs_the_kiosk_pages(monkeypatch, tmp_path):
    web_only = a_copy_of_the_site(tmp_path)
    shutil.rmtree(web_only / "kiosk")
    monkeypatch.setattr(kiosk_settings, "packaged_site", lambda: web_only)
    with pytest.raises(KioskConfigError, match="has no kiosk/index.html"):
        load_kiosk_settings(KIOSK_ENV)


def test_the_kiosk_agent_serves_the_installed_pages():
    assert load_kiosk_settings(KIOSK_ENV).site_dir.resolve() == SITE


def test_the_site_serves_web_files_only(tmp_path: Path):
    """The site folder is also a Python package: its __init__.py and __pycache__ are not pages."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from proxy.web.static import SiteFiles

    (tmp_path / "index.html").write_text("<p>fees</p>")
    (tmp_path / "__init__.py").write_text('"""the package marker"""')
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.js").write_text("stale")
    app = Starlette(routes=[Mount("/", SiteFiles(directory=tmp_path, html=True))])

    async def statuses() -> dict[str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            paths = ["/", "/index.html", "/__init__.py", "/__pycache__/app.js"]
            return {path: (await client.get(path)).status_code for path in paths}

    assert asyncio.run(statuses()) == {"/": 200, "/index.html": 200, "/__init__.py": 404,
                                       "/__pycache__/app.js": 404}
