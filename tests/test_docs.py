"""The documentation stays true to the code: the generated config reference matches the schema and
the op registry, every relative link between README.md and docs/*.md resolves, and README's test
command is the one CI runs."""

import importlib.util
import re

import pytest
from conftest import ROOT

from paddle_dx.config.reference import display_key, leaves
from paddle_dx.config.schema import SCHEMA
from paddle_dx.data.transforms import TRANSFORMS
from paddle_dx.errors import PaddleDxError
from paddle_dx.utils.generated_blocks import render

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def load_tool():
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "tools" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def anchors(path):
    """GitHub's heading anchors of a Markdown file (lower case, punctuation dropped, spaces -> '-',
    repeats numbered)."""
    seen, out = {}, set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", FENCE.sub("", path.read_text(encoding="utf-8")), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_config_reference_page_is_regenerated_from_the_code():
    tool = load_tool()
    page = tool.PAGE.read_text(encoding="utf-8")
    fresh = render(page, tool.tables())
    assert fresh == page, f"{tool.PAGE.relative_to(ROOT)} is stale: run {tool.WRITE_COMMAND}"
    missing = [display_key(p) for p, _ in leaves(SCHEMA) if f"`{display_key(p)}`" not in page]
    missing += [f"op {name}" for name in TRANSFORMS.names() if f"`{name}`" not in page]
    assert not missing, f"config reference lacks {missing}"


def test_render_replaces_only_the_generated_blocks():
    text = "intro\n<!-- generated:schema -->\nold\n<!-- /generated:schema -->\noutro\n"
    assert (
        render(text, {"schema": "| new |"})
        == "intro\n<!-- generated:schema -->\n| new |\n<!-- /generated:schema -->\noutro\n"
    )
    with pytest.raises(PaddleDxError, match="generated:ops"):
        render(text, {"ops": "| x |"})


def test_anchor_rules_follow_github():
    page = ROOT / "README.md"
    assert "tests" in anchors(page)
    assert "where-to-add-things" in anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target} (no file {linked.relative_to(ROOT)})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading '#{anchor}' in {linked.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_readme_states_the_command_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tests_section = readme.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    assert "make test" in tests_section
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "pytest -q tests" in recipe and "pytest -q tests" in tests_section


def test_results_tables_quote_the_committed_reports():
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "tools" / "results_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--check"]) == 0, f"a results table is stale: run {tool.WRITE_COMMAND}"


def test_results_table_rows_are_the_reports_numbers(tmp_path):
    import json

    from paddle_dx.studies.results_index import results_table

    report = {
        "runs": {"transfer": {"test": {"accuracy": 0.875, "auc": 0.9}, "ci95": {"accuracy": [0.8, 0.95]}}},
        "setups": {"transfer": {"arch": "ResNet50", "input_size": 224, "init": "source"}},
        "wall_seconds": {"study": 1260.0},
    }
    (tmp_path / "esophagus").mkdir()
    (tmp_path / "esophagus" / "report.json").write_text(json.dumps(report))
    rows = results_table("x/", tmp_path).splitlines()
    assert rows[2] == (
        "| [esophagus](x/esophagus/report.md) | transfer | ResNet50, 224 px | source-pretrained | "
        "87.5 [80.0, 95.0] | 90.0 | 92.32 (test) | 21 min | not checked (older report) |"
    )
    report["runs"]["transfer"]["collapsed"] = "predicts 'normal' for every test image"
    (tmp_path / "esophagus" / "report.json").write_text(json.dumps(report))
    assert (
        results_table("x/", tmp_path)
        .splitlines()[2]
        .endswith("| 21 min | COLLAPSED: predicts 'normal' for every test image |")
    )


def test_transfer_table_leads_with_each_studys_pair_from_its_report(tmp_path):
    import json

    from paddle_dx.studies.results_index import transfer_table

    summary = {"n": 3, "accuracy": 0.9, "accuracy_sd": 0.02}
    pair = {
        "arch": "EfficientNetLite0",
        "input_size": 224,
        "n_images": 88,
        "seeds": [{}, {}, {}],
        "summary": {"imagenet": summary, "scratch": {"n": 3, "accuracy": 0.6, "accuracy_sd": None}},
        "vote": {"difference": 0.3, "ci": [0.2, 0.4], "p_value": 1.2e-6},
        "verdict": "**Transfer beats scratch here** (seed-majority vote ...).",
    }
    for name, report in {
        "brain": {"imagenet_vs_scratch": pair, "wall_seconds": {"study": 3000.0}},
        "pcam": {"wall_seconds": {"study": 600.0}},
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(report))
    rows = transfer_table("x/", tmp_path).splitlines()
    assert rows[2] == (
        "| [brain](x/brain/report.md) | EfficientNetLite0, 224 px | 3 seeds, 88 test images | 90.0 ± 2.0 (n=3) | "
        "60.0 (n=3) | +30.0 [20.0, 40.0] | 1.2e-06 | **transfer better** | 50 min |"
    )
    assert rows[3].startswith("| [pcam](x/pcam/report.md) | - | not run yet (older report) |")
    pair.update(folds={"k": 5}, n_images=53, vote=None, verdict="No comparison: in every seed ...")
    (tmp_path / "brain" / "report.json").write_text(
        json.dumps({"imagenet_vs_scratch": pair, "wall_seconds": {"study": 60}})
    )
    row = transfer_table("x/", tmp_path).splitlines()[2]
    assert "| 5-fold CV, 53 images out of fold |" in row and "| - | - | no comparison: every seed collapsed |" in row
