"""Metrics as text tables (terminal, Markdown); the figures are in paddle_dx.metrics.figures."""


def format_table(metrics: dict) -> str:
    """A plain-text table of per-class and macro metrics, plus accuracy, AUC and the matrix."""
    head = f"{'class':<24}{'precision':>10}{'sensitivity':>12}{'specificity':>12}{'f1':>8}{'support':>9}"
    lines = [head, "-" * len(head)]
    for name, m in metrics["per_class"].items():
        lines.append(
            f"{name[:23]:<24}{m['precision']:>10.4f}{m['sensitivity']:>12.4f}"
            f"{m['specificity']:>12.4f}{m['f1']:>8.4f}{m['support']:>9d}"
        )
    mac = metrics["macro"]
    lines.append(
        f"{'macro':<24}{mac['precision']:>10.4f}{mac['sensitivity']:>12.4f}"
        f"{mac['specificity']:>12.4f}{mac['f1']:>8.4f}{metrics['n']:>9d}"
    )
    auc = "n/a" if metrics.get("auc") is None else f"{metrics['auc']:.4f}"
    lines.append(
        f"accuracy {metrics['accuracy']:.4f}   AUC {auc}"
        + (f"   loss {metrics['loss']:.4f}" if "loss" in metrics else "")
    )
    lines.append("confusion matrix (rows = true, columns = predicted):")
    names = metrics["class_names"]
    width = max(8, max(len(n) for n in names) + 1)
    lines.append(" " * width + "".join(f"{n[: width - 1]:>{width}}" for n in names))
    for name, row in zip(names, metrics["confusion_matrix"]):
        lines.append(f"{name[: width - 1]:<{width}}" + "".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)
