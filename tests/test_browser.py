"""The demos in a real browser: JupyterLab and Voila, driven by Playwright in Debian's Chromium.

Each demo notebook (notebooks/demos/) is opened and run in quick mode, its widget is operated
(a slider dragged, a date typed), and the output computed by the kernel must change: within 1 s
in the browser, and within KERNEL_BUDGET_MS in the kernel (the demo's own "answered in N ms" line).
Screenshots go to build/screenshots/. Without Chromium these tests are skipped, unless
GENAI_REQUIRE_BROWSER=1 (set by CI) makes that a failure. One Chinese demo (notebooks/zh/demos/)
is opened in Voila too: its labels must be on the page in Chinese, drawn with real glyphs (the
fonts-noto-cjk that .ci/run installs), not as empty boxes.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMOS = REPO / "notebooks" / "demos"
ZH_DEMOS = REPO / "notebooks" / "zh" / "demos"  # served next to the English ones as zh_<name>.ipynb
SHOTS = REPO / "build" / "screenshots"
CHROMIUM = (os.environ.get("GENAI_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-headless-shell") or shutil.which("chromium-browser"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# demo -> how to operate it: drag the first slider, or type dates into the text box
ACTIONS = {"01_kl_divergence": "slider", "02_vae_latent_space": "slider",
           "03_gan_latent_walk": "slider", "04_date_translator": "text", "05_inpainting": "slider"}

if CHROMIUM is None:
    if os.environ.get("GENAI_REQUIRE_BROWSER") == "1":
        raise RuntimeError("GENAI_REQUIRE_BROWSER=1 but no Chromium: apt-get install chromium")
    pytest.skip("no Chromium found (apt-get install chromium, or set GENAI_CHROMIUM)",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")
sync_playwright = playwright_api.sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {seconds} s")


@pytest.fixture(scope="module")
def root():
    """A throwaway notebook folder with copies of the demos, and throwaway Jupyter settings."""
    with tempfile.TemporaryDirectory(prefix="genai-browser-") as tmp:
        tmp = Path(tmp)
        (tmp / "demos").mkdir()
        for nb in [*DEMOS.glob("*.ipynb"), *ZH_DEMOS.glob("*.ipynb")]:  # with a kernelspec, so JupyterLab
            doc = json.loads(nb.read_text(encoding="utf-8"))            # does not ask for one
            doc["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                             "language": "python"}
            name = f"zh_{nb.name}" if nb.parent == ZH_DEMOS else nb.name
            (tmp / "demos" / name).write_text(json.dumps(doc), encoding="utf-8")
        settings = tmp / ".settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        # render every cell: with windowing, a cell below the fold counts as hidden to the browser
        notebook = tmp / ".settings" / "@jupyterlab" / "notebook-extension"
        notebook.mkdir(parents=True)
        (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        env = {**os.environ, "GENAI_QUICK": "1", "JUPYTER_CONFIG_DIR": str(tmp / ".config"),
               "JUPYTER_RUNTIME_DIR": str(tmp / ".runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp / ".settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / ".workspaces")}
        yield tmp, env


def serve(cmd, env, port):
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, proc)
    except Exception:
        proc.kill()
        raise
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def lab(root):
    tmp, env = root
    port = free_port()
    proc = serve([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
                  "--ip=127.0.0.1", f"--ServerApp.root_dir={tmp}", "--IdentityProvider.token=",
                  "--ServerApp.password=", "--LabApp.news_url=", "--ServerApp.open_browser=False"], env, port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="module")
def voila(root):
    tmp, env = root
    port = free_port()
    proc = serve([sys.executable, "-m", "voila", str(tmp / "demos"), "--no-browser", f"--port={port}",
                  "--Voila.ip=127.0.0.1", "--ServerApp.allow_root=True"], env, port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


# The kernel's budget for one keystroke of a demo. The date demo draws its attention heatmap in
# about 0.2 s on an idle 2-core machine (measured; the PNG is drawn twice for a tight bounding box),
# and took 0.42 s in a CI run that had been busy for 20 minutes: 0.5 s is still no noticeable lag.
KERNEL_BUDGET_MS = 500
ANSWERED = ".genai-latency:has-text('answered in')"  # the demo's first answer is on the page


def latency_ms(page) -> float:
    text = page.locator(".genai-latency").first.inner_text()
    return float(re.search(r"answered in ([\d.]+) ms", text).group(1))


def output_state(page) -> str:
    """What the kernel drew: the demo's images (their data URLs / blob URLs) and texts."""
    return page.evaluate("""() => {
        const box = document.querySelector('.genai-latency').closest('.widget-vbox') || document.body;
        return [...box.querySelectorAll('img')].map(i => i.src).join('|') + '|' +
               [...box.querySelectorAll('.widget-html-content, .widget-label')].map(e => e.innerText).join('|');
    }""")


def changed(page, before: str, timeout_ms: float = 1000) -> float:
    """Seconds until the output differs from `before` (fails after timeout_ms)."""
    t0 = time.perf_counter()
    page.wait_for_function("""(before) => {
        const box = document.querySelector('.genai-latency').closest('.widget-vbox') || document.body;
        const now = [...box.querySelectorAll('img')].map(i => i.src).join('|') + '|' +
                    [...box.querySelectorAll('.widget-html-content, .widget-label')].map(e => e.innerText).join('|');
        return now !== before;
    }""", arg=before, timeout=timeout_ms, polling=10)
    return time.perf_counter() - t0


def operate(page, name: str, tag: str):
    """Drive the demo like a student and check that the kernel's output follows."""
    page.wait_for_selector(ANSWERED, state="attached", timeout=240_000)
    page.locator(".genai-latency").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let the first render settle
    if ACTIONS[name] == "slider":
        handle = page.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        for dx in (40, -70):
            before = output_state(page)
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + dx, y, steps=4)
            page.mouse.up()
            seconds = changed(page, before)
            assert seconds < 1.0, f"{name}: the output took {seconds:.2f} s to change"
            x += dx
            page.wait_for_timeout(300)
            assert latency_ms(page) < KERNEL_BUDGET_MS, f"{name}: the kernel took {latency_ms(page)} ms"
    else:
        box = page.locator(".widget-text input").first
        box.scroll_into_view_if_needed()
        # the page must show the kernel's answer: its year (the quick model, trained in seconds, may
        # miss the day; how often the translator is right is chapter 04's measurement, not this test's)
        for text, expect in [("3 de setembro de 2041", "2041-"), ("2026年11月28日", "2026-"),
                             ("", "⚠"), ("x" * 500, "⚠"), ("🎂🎉 🎈", "⚠")]:
            before = output_state(page)
            box.fill(text)
            seconds = changed(page, before)
            assert seconds < 1.0, f"{name}: the output took {seconds:.2f} s to change after {text[:20]!r}"
            page.wait_for_function("(w) => document.body.innerText.includes(w)", arg=expect, timeout=1000)
            took = latency_ms(page)
            assert took < KERNEL_BUDGET_MS, f"{name}: the kernel took {took} ms for {text[:20]!r}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".genai-latency").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{name}-{tag}.png"))


def no_errors(page):
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] pre, "
                          ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    texts = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not texts, texts


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_demo_in_jupyterlab(lab, browser, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # a workspace of its own, reset: otherwise JupyterLab restores the previous test's notebook
        # as the active tab, and this one's widgets sit hidden behind it
        page.goto(f"{lab}/lab/workspaces/{name}/tree/demos/{name}.ipynb?reset")
        page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
        # run all once the notebook's new kernel is idle. In CI, about one lab test in ten got no widget
        # from its first run (the kernel idle, no error; never seen on a developer's machine, cause not
        # found): a second run-all shows it; a demo that never answers still fails.
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        for attempt in range(2):
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()  # Run > Run All Cells
            page.locator(".lm-Menu-item[data-command='runmenu:run-all']").first.click()
            try:
                page.wait_for_selector(ANSWERED, state="attached", timeout=120_000)
                break
            except playwright_api.TimeoutError:
                if attempt:
                    raise
        operate(page, name, "lab")
        no_errors(page)
    finally:
        page.close()


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_demo_in_voila(voila, browser, name):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(f"{voila}/voila/render/{name}.ipynb", timeout=240_000)
        operate(page, name, "voila")
        assert "Traceback" not in page.inner_text("body")
    finally:
        page.close()


# The Chinese demo opened: the KL demo, which needs no trained model, so it starts in seconds.
ZH_DEMO = "01_kl_divergence"
# English texts of its widgets, shown through the package catalog (`_()`, and `gh._()` in its code)
ZH_LABELS = ("best q for KL(p‖q)", "best q for KL(q‖p)", "answered in {ms:.1f} ms")


def distinct_glyphs(page, text: str) -> int:
    """How many different pictures the page's font draws for the characters of `text`: where no
    font has them, every one is the same empty box (tofu), so the count is 1."""
    return page.evaluate("""(text) => {
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 64;
        const ctx = canvas.getContext('2d');
        ctx.font = '40px ' + getComputedStyle(document.querySelector('.widget-button') || document.body).fontFamily;
        const picture = (ch) => {
            ctx.clearRect(0, 0, 64, 64);
            ctx.fillText(ch, 4, 48);
            return ctx.getImageData(0, 0, 64, 64).data.join(',');
        };
        return new Set([...text].map(picture)).size;
    }""", text)


def test_a_chinese_demo_shows_its_chinese_labels_in_voila(voila, browser):
    from genai_helpers.i18n import _

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(f"{voila}/voila/render/zh_{ZH_DEMO}.ipynb", timeout=240_000)
        page.wait_for_selector(".genai-latency:has-text('毫秒')", state="attached", timeout=240_000)
        body = page.inner_text("body")
        assert "演示 · KL 散度不对称" in body  # the markdown, from the chapter catalogs
        for english in ZH_LABELS:  # the widgets' labels, from the package catalog
            chinese = _(english, "zh").split("{")[0].strip()
            assert chinese != english.split("{")[0].strip() and chinese in body, (english, chinese)
        label = " ".join(page.locator(".widget-html-content").all_inner_texts())
        assert "正向" in label and "反向" in label  # the line under the figure: forward and reverse KL
        assert "Traceback" not in body
        shown = "使最小的正反向响应用时"
        assert distinct_glyphs(page, shown) == len(set(shown)), "Chinese characters drawn as empty boxes"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"zh_{ZH_DEMO}-voila.png"), full_page=True)
    finally:
        page.close()
