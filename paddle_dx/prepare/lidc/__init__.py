"""LIDC-IDRI -> labelled nodule crops: ``readings`` parses the radiologists' XML, ``series``
finds the CT series and groups the marks into findings, ``crops`` cuts and writes the crops."""

from paddle_dx.prepare.lidc.crops import parse_window, prepare_lidc

__all__ = ["parse_window", "prepare_lidc"]
