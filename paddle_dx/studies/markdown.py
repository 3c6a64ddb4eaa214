"""Markdown building blocks for reports: tables and number formats (values shown in %)."""

from collections.abc import Iterable, Sequence

from paddle_dx.studies.catalog import NOT_REPORTED


def pct(value: float | None) -> str:
    """0.9232 -> '92.32'; None -> 'n/a' (undefined, e.g. AUC with one class present)."""
    return "n/a" if value is None else f"{100 * value:.2f}"


def num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def paper_cell(value: float | None) -> str:
    return NOT_REPORTED if value is None else f"{value:.2f}"


def interval(ci: Sequence[float | None]) -> str:
    low, high = ci
    return "n/a" if low is None else f"[{100 * low:.2f}, {100 * high:.2f}]"


def table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; every cell is str()-ed, pipes escaped."""

    def cell(v):
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def per_class_table(metrics: dict) -> str:
    rows = [
        [name, pct(m["precision"]), pct(m["sensitivity"]), pct(m["specificity"]), pct(m["f1"]), m["support"]]
        for name, m in metrics["per_class"].items()
    ]
    mac = metrics["macro"]
    rows.append(
        ["macro", pct(mac["precision"]), pct(mac["sensitivity"]), pct(mac["specificity"]), pct(mac["f1"]), metrics["n"]]
    )
    return table(["class", "precision", "sensitivity", "specificity", "F1", "support"], rows)


def confusion_table(metrics: dict) -> str:
    names = metrics["class_names"]
    return table(
        ["true \\ predicted"] + names, [[name] + list(row) for name, row in zip(names, metrics["confusion_matrix"])]
    )


def history_table(history: list[dict]) -> str:
    rows = [
        [
            h["epoch"],
            f"{h['lr']:.6g}",
            num(h["train_loss"]),
            pct(h["train_accuracy"]),
            num(h.get("val_loss")),
            pct(h.get("val_accuracy")),
        ]
        for h in history
    ]
    return table(["epoch", "lr", "train loss", "train accuracy", "val loss", "val accuracy"], rows)
