"""The Chinese edition stays in step with the English: on a toy repository, a changed English cell
shows as out of date and fails the check, a new one as missing, a removed one leaves the counts;
the built notebooks' code is the English code (but for `lang="zh"` in the setup call) and their
links resolve; `_()` speaks Chinese when asked and English otherwise. And what a student reads from
the package (checker verdicts, hints, data errors, the student version's stubs, the doctor's list)
is Chinese with lang="zh", English by default, and every entry of the edition is translated."""
import ast
import re
import string
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
import torch
from babel.messages.pofile import read_po
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import genai_helpers as gh
from genai_helpers import catalogs, i18n
from genai_helpers.doctor import TROUBLES
from genai_helpers.links import broken_links
from genai_helpers.student import student_notebook
from genai_helpers.translations import pages, run, switch_language, sync, sync_package

REPO = Path(__file__).resolve().parent.parent
MARKER = "*(Not translated yet; the English original follows.)*"  # as written in translations.marker


@pytest.fixture(autouse=True)
def english_again(monkeypatch):
    """Each test starts in English (GENAI_LANG unset) and leaves the language as it found it."""
    monkeypatch.delenv(i18n.ENV, raising=False)
    i18n.set_language(None)
    i18n._catalog.cache_clear()
    yield
    i18n.set_language(None)
    i18n._catalog.cache_clear()


def toy_chapter():
    return new_notebook(cells=[
        new_markdown_cell("# Toy chapter\n\nSee [the setup](#1.-Setup) and [the demo](demos/01_toy.ipynb#Demo-·-toy)."),
        new_markdown_cell("## 1. Setup\n\nRun `gh.setup()` first; it prints $x^2$ ✅.\n\nIt seeds the random "
                          "generators, picks the device  and says which data it found, in one line."),
        new_code_cell("import genai_helpers as gh\n\nenv = gh.setup(seed=0)"),
        new_code_cell('print(gh._("Setup done."))'),
    ])


@pytest.fixture
def toy(tmp_path):
    """A repository with one chapter, one demo and a package with one message; nothing translated."""
    repo = tmp_path / "repo"
    (repo / "notebooks" / "demos").mkdir(parents=True)
    nbformat.write(toy_chapter(), repo / "notebooks" / "01_toy.ipynb")
    nbformat.write(new_notebook(cells=[
        new_markdown_cell("# Demo · toy\n\nBack to [the chapter](../01_toy.ipynb#Toy-chapter)."),
        new_code_cell("import genai_helpers as gh\ngh.setup()")]), repo / "notebooks" / "demos" / "01_toy.ipynb")
    (repo / "genai_helpers").mkdir()
    (repo / "genai_helpers" / "greet.py").write_text(
        'from .i18n import N_, _\n\nMORNING = N_("Good morning")\n\n\n'
        'def hello(name):\n    return _("Hello, {name}").format(name=name)\n')
    return repo


CHINESE = {"# Toy chapter": "# 玩具章节\n\n见[准备工作](#1.-Setup)和[演示](demos/01_toy.ipynb#Demo-·-toy)。",
           "## 1. Setup": "## 1. 准备\n\n先运行 `gh.setup()`；它打印 $x^2$ ✅。",
           "# Demo · toy": "# 演示 · 玩具\n\n回到[本章](../01_toy.ipynb#Toy-chapter)。",
           "Hello, {name}": "你好，{name}", "Good morning": "早上好", "Setup done.": "准备就绪。"}


def translate(po: Path, texts: dict = CHINESE) -> None:
    """What a translator does in a PO editor: fill each msgstr whose English starts with a key of
    `texts`, and clear the fuzzy mark with its previous msgid."""
    with po.open("rb") as f:
        catalog = read_po(f)
    for message in catalog:
        for start, text in texts.items():
            if message.id and message.id.startswith(start):
                message.string, message.previous_id = text, []
                message.flags.discard("fuzzy")
    po.write_bytes(catalogs.po_bytes(catalog, "zh"))  # as `python -m genai_helpers translations` writes it


def translate_all(repo: Path) -> None:
    for po in (repo / "locale").rglob("*.po"):
        translate(po)
    translate(i18n.catalog_path("zh", repo / "genai_helpers" / "locale"))


def row(rows, name):
    return next(r for r in rows if r.name == name)


def code_cells(path: Path) -> list:
    return [(c.id, c.source) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_a_new_edition_is_all_missing_and_the_check_fails(toy, capsys):
    rows = sync(toy)
    assert len(row(rows, "01_toy").status.missing) == 2 and len(row(rows, "demos/01_toy").status.missing) == 1
    # extracted: _("...") and N_("...") from the package, gh._("...") from the notebook's code
    assert row(rows, "genai_helpers (messages)").status.missing == ["Good morning", "Hello, {name}", "Setup done."]
    nb = nbformat.read(toy / "notebooks" / "zh" / "01_toy.ipynb", as_version=4)
    shown = nb.cells[1].source
    assert shown.startswith(i18n._(MARKER, "zh")) and shown.endswith(toy_chapter().cells[1].source)
    assert run(toy, check=True) == 1
    assert "not in step with the English" in capsys.readouterr().out


def test_a_translated_edition_passes_and_its_links_lead_to_the_translated_headings(toy):
    sync(toy)
    translate_all(toy)
    assert not any(r.failed for r in sync(toy))
    assert run(toy, check=True) == 0
    chapter, demo = toy / "notebooks" / "zh" / "01_toy.ipynb", toy / "notebooks" / "zh" / "demos" / "01_toy.ipynb"
    first = nbformat.read(chapter, as_version=4).cells[0].source
    assert "(#1.-准备)" in first and "(demos/01_toy.ipynb#演示-·-玩具)" in first
    assert "(../01_toy.ipynb#玩具章节)" in nbformat.read(demo, as_version=4).cells[0].source
    assert broken_links(chapter) == [] and broken_links(demo) == []


def test_a_changed_english_cell_is_out_of_date_until_translated_again(toy, capsys):
    sync(toy)
    translate_all(toy)
    sync(toy)
    path, po = toy / "notebooks" / "01_toy.ipynb", toy / "locale" / "zh" / "notebooks" / "01_toy.po"
    nb = nbformat.read(path, as_version=4)
    old, nb.cells[1].source = nb.cells[1].source, nb.cells[1].source.replace("first", "before anything else")
    nbformat.write(nb, path)
    before = po.read_bytes()

    assert run(toy, check=True) == 1
    assert f"out of date: cell {nb.cells[1].id}: ## 1. Setup" in capsys.readouterr().out
    assert po.read_bytes() == before  # the check writes nothing

    assert row(sync(toy), "01_toy").status.outdated == [f"cell {nb.cells[1].id}: ## 1. Setup"]
    text = po.read_text(encoding="utf-8")
    sync(toy)
    assert po.read_text(encoding="utf-8") == text, "a second update with nothing new changed the catalog"
    assert "#, fuzzy" in text and '#| msgid "" "## 1. Setup\\n"' in text  # what it was translated from
    assert "#. - Run `gh.setup()` first;" in text and "#. + Run `gh.setup()` before anything else;" in text
    assert "准备" in text  # the old translation is kept for the translator to update
    built = nbformat.read(toy / "notebooks" / "zh" / "01_toy.ipynb", as_version=4).cells[1].source
    assert "译文已过时" in built and built.endswith(nb.cells[1].source)  # the reader gets the new English

    translate(po, {"## 1. Setup": "## 1. 准备\n\n先运行 `gh.setup()`，在一切之前；它打印 $x^2$ ✅。"})
    assert run(toy, check=False) == 0 and run(toy, check=True) == 0
    assert old != nb.cells[1].source


def test_a_new_cell_is_missing_and_a_removed_one_is_kept_aside(toy, capsys):
    sync(toy)
    translate_all(toy)
    path = toy / "notebooks" / "01_toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(3, new_markdown_cell("A new paragraph."))
    removed = nb.cells.pop(1)
    nbformat.write(nb, path)

    status = row(sync(toy), "01_toy").status
    assert status.missing == [f"cell {nb.cells[2].id}: A new paragraph."] and len(status.translated) == 1
    assert not status.outdated
    text = (toy / "locale" / "zh" / "notebooks" / "01_toy.po").read_text(encoding="utf-8")
    assert f'#~ msgctxt "{removed.id}"' in text  # obsolete, with its translation, for reuse
    assert run(toy, check=True) == 1
    assert "未翻译" in nbformat.read(toy / "notebooks" / "zh" / "01_toy.ipynb", as_version=4).cells[2].source


def test_a_translation_that_loses_code_formulas_or_links_is_a_problem(toy):
    sync(toy)
    translate_all(toy)
    po = toy / "locale" / "zh" / "notebooks" / "01_toy.po"
    translate(po, {"# Toy chapter": "# 玩具章节\n\n见准备工作和演示。",
                   "## 1. Setup": "### 准备\n\n先运行 gh.setup()。"})
    problems = " | ".join(row(sync(toy), "01_toy").problems)
    for lost in ("lost link targets", "lost code or formulas: `gh.setup()`, $x^2$", "headings differ", "lost markers"):
        assert lost in problems


def test_package_messages_are_extracted_and_their_placeholders_checked(toy):
    po = i18n.catalog_path("zh", toy / "genai_helpers" / "locale")
    assert "Hello, {name}" in sync_package(toy, "zh", write=True).status.missing
    translate(po, {"Hello, {name}": "你好，{名字}"})
    assert "placeholders differ" in sync_package(toy, "zh", write=True).problems[0]
    translate(po)
    assert sync_package(toy, "zh", write=True).status.translated == ["Good morning", "Hello, {name}", "Setup done."]


def test_the_setup_call_is_the_one_place_the_language_switches():
    assert switch_language("env = gh.setup(seed=0)", "zh") == 'env = gh.setup(seed=0, lang="zh")'
    assert switch_language("gh.setup()\nx = 1", "zh") == 'gh.setup(lang="zh")\nx = 1'
    assert switch_language("gh.setup(device=pick(a, b))", "zh") == 'gh.setup(device=pick(a, b), lang="zh")'
    assert switch_language("print(1)", "zh") is None
    with pytest.raises(ValueError, match="leave it out"):
        switch_language('gh.setup(lang="en")', "zh")


def english_code(zh_source: str) -> str:
    """The zh setup call back to English: the one difference the build may make."""
    return re.sub(r'(gh\.setup\(.*?)(, )?lang="zh"\)', r"\1)", zh_source, count=1, flags=re.S)


@pytest.fixture(scope="module")
def edition():
    """The repository's zh edition as the build makes it (nothing written)."""
    return sync(REPO, "zh", write=False)


@pytest.mark.parametrize("page", pages(REPO, "zh"), ids=lambda p: p.name)
def test_chinese_code_cells_are_the_english_ones(page):
    english, chinese = code_cells(page.english), code_cells(page.output)
    assert [i for i, _ in chinese] == [i for i, _ in english]
    differ = [(zh, en) for (_, zh), (_, en) in zip(chinese, english) if zh != en]
    assert len(differ) == 1, "exactly one code cell (the setup call) differs"
    assert english_code(differ[0][0]) == differ[0][1] and 'lang="zh"' in differ[0][0]


@pytest.mark.parametrize("page", pages(REPO, "zh"), ids=lambda p: p.name)
def test_every_link_in_the_chinese_notebooks_resolves(page):
    broken = broken_links(page.output)
    assert not broken, f"{page.output.name}: links that lead nowhere: {broken}"


def test_the_edition_is_built_from_the_current_english(edition):
    """What is committed is what `python -m genai_helpers translations` makes, and no translation
    lost code, formulas or links (missing translations are allowed until the edition is complete)."""
    stale = [what for r in edition for what in r.stale]
    assert not stale, f"{stale}: run python -m genai_helpers translations and commit what it changes"
    problems = [what for r in edition for what in r.problems]
    assert not problems, problems


def test_underscore_speaks_chinese_when_asked_and_english_otherwise(monkeypatch):
    assert gh._ is i18n._  # what notebook code calls
    assert i18n._(MARKER) == MARKER and i18n.language() == "en"
    chinese = i18n._(MARKER, "zh")
    assert "未翻译" in chinese
    monkeypatch.setenv(i18n.ENV, "zh_CN.UTF-8")
    assert i18n.language() == "zh" and i18n._(MARKER) == chinese
    monkeypatch.setenv(i18n.ENV, "fr_FR.UTF-8")  # a shell's locale the course lacks: English, no error
    assert i18n.language() == "en" and i18n._(MARKER) == MARKER
    monkeypatch.setenv(i18n.ENV, "zh")
    assert i18n._("a message nobody wrapped") == "a message nobody wrapped"


def test_setup_switches_the_language_and_says_what_to_do_with_a_wrong_one(monkeypatch):
    monkeypatch.setenv("GENAI_OFFLINE", "1")
    gh.setup(seed=0, quiet=True, lang="zh")
    assert i18n.language() == "zh"
    gh.setup(seed=0, quiet=True)  # without lang the language stays
    assert i18n.language() == "zh"
    with pytest.raises(ValueError) as e:
        gh.setup(seed=0, quiet=True, lang="fr")
    assert "'fr'" in str(e.value) and "zh" in str(e.value) and "课程" in str(e.value)  # said in the current language
    i18n.set_language("en")
    with pytest.raises(ValueError, match="unknown language 'fr': the course speaks en, zh"):
        i18n.normalize("fr")


def test_untranslated_and_fuzzy_messages_come_out_in_english(tmp_path, monkeypatch):
    catalog = catalogs.new_catalog("zh", "test")
    catalog.add("Translated", "已翻译")
    catalog.add("Out of date", "过时的译文", flags=["fuzzy"], previous_id=["Out of date!"])
    catalog.add("Missing")
    path = i18n.catalog_path("zh", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(catalogs.po_bytes(catalog, "zh"))
    monkeypatch.setattr(i18n, "LOCALE", tmp_path)
    i18n.set_language("zh")
    assert [i18n._(m) for m in ("Translated", "Out of date", "Missing")] == ["已翻译", "Out of date", "Missing"]


# --- phase 2: what a student reads from the package, in the language of the notebook ------------

HAN = re.compile(r"[\u4e00-\u9fff]")  # a Chinese character


def chinese(text: str) -> bool:
    return bool(HAN.search(text))


def verdict_of(checker, answer) -> str:
    """What the student sees when a checker rejects `answer` (the text of CheckFailed)."""
    with pytest.raises(gh.checks.CheckFailed) as e:
        checker(answer)
    return str(e.value)


def wrong_sign_kl(mu, logvar):
    """Chapter 02's Exercise 2.5 with the classic slip: the minus sign in front of 1/2 forgotten."""
    return 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def test_a_checker_verdict_is_chinese_with_lang_zh_and_english_by_default():
    mistake = "wrong sign: the KL divergence is never negative"
    english = verdict_of(gh.checks.check_kl, wrong_sign_kl)
    assert mistake in english and "checks failed" in english and not chinese(english)
    i18n.set_language("zh")
    theirs = verdict_of(gh.checks.check_kl, wrong_sign_kl)
    assert i18n._(mistake) != mistake and i18n._(mistake) in theirs  # the named mistake, translated
    assert "项检查中有" in theirs and "KL 散度" in theirs and mistake not in theirs
    assert "ERRATA 第 11 条" in verdict_of(gh.checks.check_nonsaturating_loss,  # chapter 03, glossary's form
                                           lambda f: -torch.nn.functional.softplus(f).mean())


def test_a_data_error_is_chinese_with_lang_zh_and_english_by_default(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, (magic, count, item) in gh.data.MNIST_FILES.items():  # a download cut off after 1,000 bytes
        (raw / name).write_bytes(magic.to_bytes(4, "big") + count.to_bytes(4, "big") + bytes(1000))
    with pytest.raises(gh.data.DataError) as e:
        gh.data.check_mnist_files(raw)
    assert "is truncated" in str(e.value) and "GENAI_OFFLINE=1" in str(e.value) and not chinese(str(e.value))
    gh.setup(seed=0, quiet=True, lang="zh")
    with pytest.raises(gh.data.DataError) as e:
        gh.data.check_mnist_files(raw)
    message = str(e.value)
    assert "被截断" in message and "离线" in message and str(raw) in message and "GENAI_OFFLINE=1" in message


def is_underscore(func) -> bool:
    """`_` in the package, `gh._` in a notebook."""
    return (isinstance(func, ast.Name) and func.id == "_") or (isinstance(func, ast.Attribute) and func.attr == "_")


@lru_cache(maxsize=None)
def english_sources() -> tuple:
    """(where, code) for every module of the package and every code cell of the English notebooks
    (read once: the per-notebook tests below share it)."""
    found = [(path.name, path.read_text(encoding="utf-8")) for path in sorted((REPO / "genai_helpers").rglob("*.py"))]
    for path in sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "demos").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
                found.append((f"{path.name} {cell.id}", code))
    return tuple(found)


def test_every_message_is_formatted_with_exactly_its_placeholders():
    """`_("... {name} ...").format(name=...)` everywhere, the notebooks' `gh._` included: a placeholder
    without its argument would raise KeyError only when that rare message is shown (the catalog check
    covers the translations); an f-string inside `_()` could not be looked up in the catalog."""
    wrong = []
    for where, code in english_sources():
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call) and is_underscore(node.func) and node.args \
                    and isinstance(node.args[0], (ast.JoinedStr, ast.BinOp)):
                wrong.append(f"{where}:{node.lineno}: _() of an f-string or expression: use _('...').format(...)")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
                continue
            inner = node.func.value
            if isinstance(inner, ast.Call) and is_underscore(inner.func) \
                    and inner.args and isinstance(inner.args[0], ast.Constant):
                names = {field.split(".")[0].split("[")[0]
                         for _text, field, _spec, _conv in string.Formatter().parse(inner.args[0].value)
                         if field is not None}
                given = {k.arg for k in node.keywords}
                if names != given or node.args:
                    wrong.append(f"{where}:{node.lineno}: {sorted(names)} vs {sorted(given)}")
    assert not wrong, wrong


ENGLISH_WORD = re.compile(r"\b[a-z]{3,}\b")  # a word a reader reads; "KL(p‖q)", "ELBO", "{x:.3f}" are not


def untranslated_words(node) -> list:
    """The English words in the string literals of `node` (an f-string's text parts included) that
    are not inside a `_()` call. A subscript's key (`r["params"]` in `.format(params=r["params"])`)
    is no text: it is never printed."""
    if isinstance(node, ast.Call) and is_underscore(node.func):
        return []
    if isinstance(node, ast.Subscript):
        return untranslated_words(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ENGLISH_WORD.findall(node.value)
    if isinstance(node, ast.FormattedValue):  # {expr:spec}: the spec is no text
        return untranslated_words(node.value)
    return [word for child in ast.iter_child_nodes(node) for word in untranslated_words(child)]


ENGLISH_NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def printed_arguments(call: ast.Call) -> list:
    """The arguments of `call` that end up printed: all of a `print`'s; the description (and a `holds`'s
    detail) of a `gh.verify.Checklist` check, which the checklist prints after "✔ check N:"."""
    if isinstance(call.func, ast.Name) and call.func.id == "print":
        return call.args
    if isinstance(call.func, ast.Attribute) and call.func.attr in ("close", "holds") \
            and isinstance(call.func.value, ast.Name) and call.func.value.id == "checks":
        detail = call.args[2:3] if call.func.attr == "holds" else []
        return call.args[:1] + detail + [k.value for k in call.keywords if k.arg in ("what", "detail")]
    return []


@pytest.mark.parametrize("name", ENGLISH_NOTEBOOKS)
def test_what_notebook_code_prints_is_translatable(name):
    """Every English sentence a notebook's code prints goes through `gh._()` (so the Chinese edition,
    whose code is the English code, prints it in Chinese): a print of an English literal or f-string,
    or such a check description (`checks.close("...", ...)`), fails here. Figures drawn by notebook
    code may keep English labels (the text explains them)."""
    wrong = []
    for where, code in english_sources():
        if not where.startswith(name + " "):
            continue
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call):
                words = [w for arg in printed_arguments(node) for w in untranslated_words(arg)]
                if words:
                    wrong.append(f"{where}:{node.lineno}: {' '.join(words[:6])}")
    assert not wrong, f"{len(wrong)} prints of English outside gh._(): " + "; ".join(wrong)


def test_the_chinese_edition_is_complete(edition):
    behind = {r.name: f"{len(r.status.missing)} missing, {len(r.status.outdated)} out of date"
              for r in edition if r.status.missing or r.status.outdated}
    assert not behind, f"{behind}: translate them (CONTRIBUTING.md, 'Adding a language')"


def stubs(nb) -> list:
    """(cell id, the message its stub raises) for every exercise cell of a student notebook."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "raise NotImplementedError(" in cell.source:
            call = re.search(r"raise NotImplementedError\((.+)\)\s*$", cell.source, re.M)
            found.append((cell.id, ast.literal_eval(call.group(1))))
    return found


def test_a_chinese_student_version_builds_and_its_stubs_speak_chinese(tmp_path):
    from genai_helpers.__main__ import main

    assert main(["student", "--lang", "zh", "--out", str(tmp_path)]) == 0
    written = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in written] == [p.output.name for p in pages(REPO, "zh") if "/" not in p.name]
    first = stubs(nbformat.read(written[0], as_version=4))[0][1]
    assert first.startswith("练习 0.1 还没有完成") and 'gh.hint("0.1")' in first and "⏭" in first
    for path in written:  # the same exercise numbers, cell by cell, as the English student version
        english = student_notebook(nbformat.read(REPO / "notebooks" / path.name, as_version=4))
        theirs = stubs(nbformat.read(path, as_version=4))
        assert [(i, re.findall(r"\d+\.\d+", m)) for i, m in theirs] == \
               [(i, re.findall(r"\d+\.\d+", m)) for i, m in stubs(english)], path.name
        assert all(chinese(m) for _i, m in theirs) and not any(chinese(m) for _i, m in stubs(english))


def test_hints_are_shown_in_the_language_of_the_course(capsys):
    i18n.set_language("zh")
    hint_level = gh.hints.all_hints()["2.2"][0]
    gh.hint("2.2", level=1)
    shown = capsys.readouterr().out
    assert shown.startswith("💡 练习 2.2，第 1 级提示") and i18n._(hint_level) in shown and chinese(i18n._(hint_level))


def test_readme_zh_lists_every_trouble_the_doctor_knows_in_chinese():
    """README.zh.md's "可能出现的问题" is the doctor's list in Chinese, word for word (like README.md's)."""
    readme = (REPO / "README.zh.md").read_text(encoding="utf-8")
    for what, fix in TROUBLES:
        zh_what, zh_fix = i18n._(what, "zh"), i18n._(fix, "zh")
        assert zh_what != what and zh_fix != fix, f"no translation for the trouble {what!r}"
        assert f"**{zh_what}**：{zh_fix}" in readme, what


def collapse_diagnosis() -> str:
    """A short VAE run that ends with 15 of its 16 latent dimensions silent: the diagnosis as printed."""
    w = gh.diagnose.Diagnostics()
    for i, active in enumerate([1.0] * 5 + [1 / 16] * 55):
        w.after_step(i + 1, {"loss": 1.0, "kl_active": active})
    (found,) = w.at_end(60)
    return str(found)


def test_fits_lines_and_diagnoses_are_chinese_with_lang_zh(task, regression, capsys):
    """What a student reads after every training: fit's closing line, how it stopped, and each diagnosis.
    A run that stops in Chinese on a NaN is still recognised as one (its divergence diagnosis)."""
    english = collapse_diagnosis()
    assert english.startswith("⚠ posterior collapse (from step 6):") and not chinese(english)
    i18n.set_language("zh")
    theirs = collapse_diagnosis()
    assert theirs.startswith("⚠ 后验坍缩（从第 6 步起）：至少 94% 的隐变量维度不活跃")
    assert "ERRATA 第 5 条" in theirs and "gh.losses.bernoulli_nll" in theirs and "posterior" not in theirs

    model, opt, step = task()
    gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=2, batch_size=32, plot=False,
           progress=False, desc="toy")
    out = capsys.readouterr().out
    assert "toy：轮数 0->2，每轮 8 步" in out and "toy：完成，2 轮，用时" in out and "done" not in out

    steps = []

    def nan_at_11(batch):
        steps.append(1)
        loss = step(batch)["loss"]
        return {"loss": loss * float("nan") if len(steps) == 11 else loss}

    model, opt, step = task()
    hist = gh.fit(nan_at_11, regression(), state={"model": model, "opt": opt}, epochs=2, batch_size=32,
                  plot=False, progress=False, desc="toy")
    out = capsys.readouterr().out
    assert hist.stopped.startswith("第 11 步的损失不是有限值（loss=nan）") and "已停止：第 11 步" in out
    assert [d["kind"] for d in hist.diagnoses] == ["divergence"] and "⚠ 训练发散（从第 " in out


def test_the_packages_figures_draw_chinese_with_glyphs(caplog):
    """A figure of the package under lang zh draws its Chinese with a CJK font: matplotlib logs no
    'does not have a glyph' (a $...$ formula in the same text would send the Chinese to mathtext's
    fonts, which have none: chapter 06's data-parallel picture did that)."""
    import matplotlib.pyplot as plt
    if not gh.plot.cjk_font():
        pytest.skip("no CJK font installed (.ci/run installs fonts-noto-cjk)")
    gh.setup(seed=0, quiet=True, lang="zh")
    fig = gh.plot.data_parallel(world=2, batch=128)
    with caplog.at_level("WARNING"):
        fig.canvas.draw()
    plt.close(fig)
    drawn = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert chinese(drawn), "the picture should be labelled in Chinese under lang zh"
    missing = [r.getMessage() for r in caplog.records if "glyph" in r.getMessage()]
    assert not missing, missing[:3]
