"""Metrics as text tables (terminal, Markdown) and as matplotlib figures."""
import numpy as np


def format_table(metrics):
    """A plain-text table of per-class and macro metrics, plus accuracy, AUC and the matrix."""
    head = f"{'class':<24}{'precision':>10}{'sensitivity':>12}{'specificity':>12}{'f1':>8}{'support':>9}"
    lines = [head, "-" * len(head)]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name[:23]:<24}{m['precision']:>10.4f}{m['sensitivity']:>12.4f}"
                     f"{m['specificity']:>12.4f}{m['f1']:>8.4f}{m['support']:>9d}")
    mac = metrics["macro"]
    lines.append(f"{'macro':<24}{mac['precision']:>10.4f}{mac['sensitivity']:>12.4f}"
                 f"{mac['specificity']:>12.4f}{mac['f1']:>8.4f}{metrics['n']:>9d}")
    auc = "n/a" if metrics.get("auc") is None else f"{metrics['auc']:.4f}"
    lines.append(f"accuracy {metrics['accuracy']:.4f}   AUC {auc}"
                 + (f"   loss {metrics['loss']:.4f}" if "loss" in metrics else ""))
    lines.append("confusion matrix (rows = true, columns = predicted):")
    names = metrics["class_names"]
    width = max(8, max(len(n) for n in names) + 1)
    lines.append(" " * width + "".join(f"{n[:width - 1]:>{width}}" for n in names))
    for name, row in zip(names, metrics["confusion_matrix"]):
        lines.append(f"{name[:width - 1]:<{width}}" + "".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)


def confusion_matrix_figure(metrics, title="Confusion matrix"):
    """A matplotlib Figure of the confusion matrix with counts in the cells."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(metrics["confusion_matrix"])
    names = metrics["class_names"]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.2 * len(names) + 2))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    limit = cm.max() / 2 if cm.size else 0
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > limit else "black")
    fig.tight_layout()
    return fig


def figure_to_rgb(fig):
    """Render a Figure to an HxWx3 uint8 array (for VisualDL's add_image)."""
    import matplotlib.pyplot as plt
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    return rgb
