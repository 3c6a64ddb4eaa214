"""The spoken result: a sentence per prediction, turned into WAV bytes by espeak-ng, offline.

Nothing is written to disk: espeak-ng reads the text on stdin and writes the WAV to stdout.
Without espeak-ng the server still runs and the page says speech is unavailable.
"""

import re
import shutil
import subprocess
import wave
from collections.abc import Mapping
from io import BytesIO

DISCLAIMER = "This is an aid, not a diagnosis."
# a class whose name says "nothing found" is spoken as "No abnormality detected"
_NORMAL_WORDS = {"normal", "healthy", "benign", "negative", "notumor", "nofinding"}
_NORMAL_PHRASES = ("no tumor", "no tumour", "no finding", "no abnormality", "no lesion")
# the next step spoken with "speak results as they appear": worded as an aid ("may"), never an order
NEXT_STEPS = {
    "finding": "A clinician may wish to review this image",
    "normal": "Any follow-up is for your clinician to decide",
}


def is_normal_class(name: object) -> bool:
    """``normal``, ``normal-cecum``, ``no_tumor``, ``lung_n`` (LC25000's benign tissue) -> True."""
    words = [w for w in re.split(r"[\s_\-]+", str(name).lower()) if w]
    text = " ".join(words)
    return (
        bool(_NORMAL_WORDS.intersection(words))
        or text.startswith(_NORMAL_PHRASES)
        or (len(words) > 1 and words[-1] == "n")
    )


def humanise(name: object) -> str:
    """``pituitary_tumor`` -> ``Pituitary tumor``."""
    text = " ".join(w for w in re.split(r"[\s_\-]+", str(name)) if w)
    return text[:1].upper() + text[1:]


def next_step(class_name: str) -> str:
    """The short next-step sentence for a result (the PCam paper's broadcast gives advice)."""
    return NEXT_STEPS["normal" if is_normal_class(class_name) else "finding"]


def sentence(
    class_name: str, probability: float, phrases: Mapping[str, str] | None = None, advice: bool = False
) -> str:
    """ "<Class> suspected, probability 93 percent. This is an aid, not a diagnosis."

    ``phrases`` maps class names to what to say instead of "<Class> suspected"; ``advice`` adds the
    next step before the disclaimer, which always comes last."""
    if phrases and class_name in phrases:
        finding = phrases[class_name]
    elif is_normal_class(class_name):
        finding = "No abnormality detected"
    else:
        finding = f"{humanise(class_name)} suspected"
    step = f"{next_step(class_name)}. " if advice else ""
    return f"{finding}, probability {round(100 * float(probability))} percent. {step}{DISCLAIMER}"


class Speech:
    """``Speech().wav(text)`` -> WAV bytes; ``available`` / ``reason`` say whether it can."""

    def __init__(self, binary=None, speed=150, timeout=30) -> None:
        self.binary = binary or shutil.which("espeak-ng") or shutil.which("espeak")
        self.speed, self.timeout = speed, timeout

    @property
    def available(self) -> bool:
        return self.binary is not None

    @property
    def reason(self) -> str | None:
        return None if self.available else "speech unavailable: espeak-ng is not installed (apt-get install espeak-ng)"

    def wav(self, text: str) -> bytes:
        proc = subprocess.run(
            [self.binary, "--stdout", "-s", str(self.speed)],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=self.timeout,
            check=True,
        )
        return _fix_wav_header(proc.stdout)


def _fix_wav_header(raw):
    """espeak-ng streaming to stdout cannot seek back, so its header claims ~2 GB of audio;
    rewrite it with the real length so every browser plays it."""
    with wave.open(BytesIO(raw)) as src:
        params = src.getparams()
        frames = src.readframes(src.getnframes())
    out = BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setnchannels(params.nchannels)
        dst.setsampwidth(params.sampwidth)
        dst.setframerate(params.framerate)
        dst.writeframes(frames)
    return out.getvalue()
