"""Static export of figures: one standalone HTML page, and PNG/SVG images through kaleido and Debian's chromium."""

from __future__ import annotations

import html
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go


def find_browser() -> str | None:
    """A Chromium for kaleido: $BROWSER_PATH, else chromium/chrome on PATH, else None (never downloads one)."""
    env = os.environ.get("BROWSER_PATH")
    if env and os.access(env, os.X_OK):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def figures_html(figures: Sequence[go.Figure], title: str, text: str = "") -> str:
    """One standalone HTML page (plotly.js inlined: no server, no network) with the figures and a text block."""
    parts = [
        f.to_html(full_html=False, include_plotlyjs=(i == 0), config={"responsive": True})
        for i, f in enumerate(figures)
    ]
    pre = f"<pre style='font-size:12px'>{html.escape(text)}</pre>" if text else ""
    heading = html.escape(title).replace("\n", "<br>")
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title.splitlines()[0] if title else '')}"
        f"</title></head><body style='font-family:sans-serif'><h2>{heading}</h2>{''.join(parts)}{pre}</body></html>\n"
    )


def export(
    figures: dict[str, go.Figure], out_dir: Path | str, stem: str, title: str = "", text: str = "", images: bool = True
) -> list[Path]:
    """Write `stem`.html (all figures, standalone) and, per figure `name`, `stem[_name]`.png and .svg.

    figures: {name: figure}; the first is written as `stem`.png/.svg, the others as
    `stem_name`.png/.svg. Images need Chromium (kaleido >= 1): without one, a warning is printed
    and only the HTML is written. Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    page = out / f"{stem}.html"
    page.write_text(figures_html(list(figures.values()), title or stem, text), encoding="utf-8")
    written.append(page)
    if not images:
        return written
    browser = find_browser()
    if browser is None:
        print(
            f"warning: no Chromium found (install it: bash scripts/install-chromium.sh); "
            f"skipping PNG/SVG export of {stem}, the HTML is written"
        )
        return written
    os.environ.setdefault("BROWSER_PATH", browser)  # kaleido looks here first; it never downloads a browser
    import kaleido

    server = getattr(kaleido, "_global_server", None)
    started = server is not None and not server.is_running()
    if started:  # one Chromium for all images instead of one per image (seconds each)
        kaleido.start_sync_server(silence_warnings=True)
    try:
        for i, (name, fig) in enumerate(figures.items()):
            base = stem if i == 0 else f"{stem}_{name}"
            for ext, scale in (("png", 2), ("svg", 1)):
                path = out / f"{base}.{ext}"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "kopts ignored when using a server"
                    fig.write_image(path, scale=scale)
                written.append(path)
    finally:
        if started:
            kaleido.stop_sync_server(silence_warnings=True)
    return written
