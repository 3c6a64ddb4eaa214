"""papers.yaml against the papers themselves: every recorded number stands on the line it quotes,
table rows are read in order, and the tables agree with each other where the paper's arithmetic
allows (gastric Table 4's confusion matrices give Tables 1-3's sensitivities)."""

import re

import pytest

from paddle_dx.studies.catalog import PAPERS_DIR, STUDIES, get_study

NUMBER = re.compile(r"\d+(?:\.\d+)?")
LEADING = re.compile(r"^(\d[\d ,]*(?:\.\d+)?)\s*(k|thousand)?", re.IGNORECASE)


def paper_lines(study):
    path = study.paper_path()
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path.read_text(encoding="utf-8").splitlines()


def parse(text):
    """'2 001' -> 2001, '70,000' -> 70000, '57.5k' -> 57500, '270 thousand' -> 270000, '93%' -> 93."""
    match = LEADING.match(text)
    assert match, text
    value = float(match.group(1).replace(" ", "").replace(",", ""))
    return value * 1000 if match.group(2) else value


@pytest.mark.parametrize("name", STUDIES.names())
def test_every_number_stands_on_the_line_it_quotes(name):
    study = get_study(name)
    lines = paper_lines(study)
    assert study.numbers, name
    for n in study.numbers:
        assert 1 <= n.line <= len(lines), (n.name, n.line)
        line = lines[n.line - 1]
        if n.row is not None:
            continue  # checked whole, below
        if n.text is not None:
            assert re.search(rf"(?<![\d.]){re.escape(n.text)}(?![\d])", line), (n.name, n.text, line)
            assert parse(n.text) == pytest.approx(n.value), (n.name, n.text, n.value)
        else:
            assert any(float(t) == pytest.approx(n.value) for t in NUMBER.findall(line)), (n.name, n.value, line)


@pytest.mark.parametrize("name", STUDIES.names())
def test_table_rows_are_the_trailing_numbers_of_their_line_in_order(name):
    study = get_study(name)
    lines = paper_lines(study)
    for row in study.rows:
        tokens = [float(t) for t in NUMBER.findall(lines[row["line"] - 1])]
        assert tokens[-len(row["values"]) :] == pytest.approx(row["values"]), (row["name"], lines[row["line"] - 1])


@pytest.mark.parametrize("name", STUDIES.names())
def test_conflicts_quote_existing_lines_and_every_paper_has_one_study(name):
    study = get_study(name)
    lines = paper_lines(study)
    for conflict in study.conflicts:
        assert conflict["text"] and all(1 <= i <= len(lines) and lines[i - 1].strip() for i in conflict["lines"])
    index = (PAPERS_DIR / "README.md").read_text(encoding="utf-8")
    assert f"| `{study.paper}` | `{name}` |" in index


def test_the_headline_numbers_and_their_splits():
    eso, brain, lung, pcam = (get_study(s) for s in ("esophagus", "brain", "lung_nodule", "pcam"))
    assert eso.paper_value("transfer", "accuracy", "validation") == 92.32
    assert eso.paper_value("transfer", "accuracy", "test") == 92.32  # the conclusion says test set
    assert eso.paper_value("scratch", "accuracy", "validation") == 80.12
    assert brain.paper_value("ResNet18", "accuracy", "validation") == pytest.approx(96.0)
    assert brain.paper_value("ResNet18", "train_accuracy", "training") == pytest.approx(95.6)
    assert brain.table_value("Table 2/epoch 10/train_accuracy") == pytest.approx(0.986)  # vs 0.956 in the text
    assert lung.paper_value("ResNet50", "accuracy", "test") == pytest.approx(93.0)
    assert pcam.paper_value("ResNet101", "accuracy", "test") == 97.54
    assert [eso.table_value(f"Table 2/pathological/{s}") for s in ("train", "val", "test")] == [120, 40, 40]
    assert [brain.table_value(f"Table 2/epoch {e}/epoch") for e in range(1, 11)] == list(range(1, 11))
    assert lung.schedule == {
        "batch_size": 16,
        "iterations": 7500,
        "stop_after_iterations": 5000,
        "stop_val_accuracy": 0.90,
    }


def test_gastric_tables_hold_every_cell_and_table4_gives_tables_1_3_sensitivities():
    study = get_study("gastric")
    tables = {"VGG19": "Table 1", "ResNet50": "Table 2", "InceptionV3": "Table 3"}
    classes = ("GC", "GU", "CG")
    for model, table in tables.items():
        for stage in ("pre-training", "fine-tuning"):
            for metric in ("precision", "sensitivity", "f1"):
                for col in classes + ("average",):
                    assert study.table_value(f"{table}/{model}/{metric}/{stage}/{col}") is not None
            matrix = [[study.table_value(f"Table 4/true {t}/{stage}/{model}/{p}") for p in classes] for t in classes]
            for i, cls in enumerate(classes):
                assert sum(matrix[i]) == 150  # 150 test images per class (line 7)
                recall = round(100 * matrix[i][i] / 150)
                assert recall == study.table_value(f"{table}/{model}/sensitivity/{stage}/{cls}"), (model, stage, cls)


def test_recorded_inconsistencies_hold_in_the_papers_arithmetic():
    """Each inconsistency of issue 24 recomputed from papers.yaml's numbers (read from the texts)."""
    brain, eso, gastric, lung = (get_study(s) for s in ("brain", "esophagus", "gastric", "lung_nodule"))
    counts = {n.name: n.value for n in brain.numbers}
    assert counts["training images"] + counts["validation images"] + counts["test images"] == 263 != counts["images"]

    def fits(values, n):  # every value printed to 3 decimals is some k / n
        return all(abs(v * n - round(v * n)) <= 0.0005 * n for v in values)

    val = [brain.table_value(f"Table 2/epoch {e}/val_accuracy") for e in range(1, 11)]
    train = [brain.table_value(f"Table 2/epoch {e}/train_accuracy") for e in range(1, 11)]
    assert fits(val, 25) and not fits(val, 28)
    assert fits(train, 207) and not fits(train, 208)
    assert any("263" in c["text"] and "1/25" in c["text"] for c in brain.conflicts)

    n_val = sum(eso.table_value(f"Table 2/{c}/val") for c in ("pathological", "normal"))
    for run in ("transfer", "scratch"):
        accuracy = eso.paper_value(run, "accuracy", "validation")
        assert all(abs(100 * k / n_val - accuracy) > 0.005 for k in range(n_val + 1)), run
    assert any("not fractions of the 60" in c["text"] for c in eso.conflicts)

    classes, mismatches = ("GC", "GU", "CG"), []
    for model, table in {"VGG19": "Table 1", "ResNet50": "Table 2", "InceptionV3": "Table 3"}.items():
        for stage in ("pre-training", "fine-tuning"):
            m = [[gastric.table_value(f"Table 4/true {t}/{stage}/{model}/{p}") for p in classes] for t in classes]
            for j, cls in enumerate(classes):
                precision = 100 * m[j][j] / sum(row[j] for row in m)
                if round(precision) != gastric.table_value(f"{table}/{model}/precision/{stage}/{cls}"):
                    mismatches.append((model, stage, cls, round(precision, 1)))
    assert mismatches == [("InceptionV3", "pre-training", "GU", 66.5)]
    assert any("64 %" in c["text"] and "66.5 %" in c["text"] for c in gastric.conflicts)

    lines = paper_lines(lung)
    assert "1018" in lines[133 - 1] and "1008" in lines[146 - 1]
    assert any(c["lines"] == [133, 146] for c in lung.conflicts)


@pytest.mark.parametrize("name", STUDIES.names())
def test_our_choices_are_settings_the_paper_does_not_state(name):
    study = get_study(name)
    text = "\n".join(paper_lines(study))
    for choice in study.our_choices:
        assert choice["setting"] and choice["why"] and choice["absent"], choice
        for pattern in choice["absent"]:
            assert not re.search(pattern, text, re.IGNORECASE), (name, choice["setting"], pattern)
        assert "(299 px)" not in study.setting and "96 x 96" not in study.setting
