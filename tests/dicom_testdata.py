"""Write small synthetic CT slices and LIDC XML for the DICOM/LIDC tests (not a test module)."""

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# identifiers that must never leave the DICOM header
SECRET_NAME, SECRET_ID, SECRET_BIRTH = "Doe^Jane", "MRN-4471-SECRET", "19700101"


def write_ct_slice(
    path, hu, series_uid, study_uid, z, sop_uid=None, photometric="MONOCHROME2", spacing=0.7, patient_id=SECRET_ID
):
    """A real single-frame CT DICOM file (int16 stored, intercept -1024) holding ``hu``."""
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.Modality = "CT"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = SECRET_NAME, patient_id, SECRET_BIRTH
    ds.ImagePositionPatient = [-100.0, -100.0, float(z)]
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = 1.25
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelData = (np.asarray(hu) + 1024).astype("<i2").tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return sop_uid


def disc_slice(size, centre=None, radius=5, background=-790, inside=40, fov=None):
    """HU slice: lung-like background, an optional bright disc, -2000 outside a round field of view."""
    yy, xx = np.mgrid[:size, :size]
    hu = np.full((size, size), background, np.int16)
    if centre is not None:
        hu[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2] = inside
    if fov:
        hu[(xx - size / 2) ** 2 + (yy - size / 2) ** 2 > fov**2] = -2000
    return hu


def circle_points(centre, radius, n=16):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(int(round(centre[0] + radius * np.cos(a))), int(round(centre[1] + radius * np.sin(a)))) for a in angles]


def roi_xml(points, sop_uid=None, z=None, tag="roi", point_tag="edgeMap"):
    uid = f"<imageSOP_UID>{sop_uid}</imageSOP_UID>" if sop_uid else ""
    zpos = f"<imageZposition>{z}</imageZposition>" if z is not None else ""
    pts = "".join(f"<{point_tag}><xCoord>{x}</xCoord><yCoord>{y}</yCoord></{point_tag}>" for x, y in points)
    if tag is None:
        return f"{zpos}{uid}{pts}"
    return f"<{tag}>{zpos}{uid}<inclusion>TRUE</inclusion>{pts}</{tag}>"


def nodule_xml(nodule_id, rois, malignancy=None):
    chars = (
        f"<characteristics><subtlety>3</subtlety><malignancy>{malignancy}</malignancy></characteristics>"
        if malignancy
        else ""
    )
    return f"<unblindedReadNodule><noduleID>{nodule_id}</noduleID>{chars}{''.join(rois)}</unblindedReadNodule>"


def non_nodule_xml(mark_id, point, sop_uid=None, z=None):
    body = roi_xml([point], sop_uid, z, tag=None, point_tag="locus")
    return f"<nonNodule><nonNoduleID>{mark_id}</nonNoduleID>{body}</nonNodule>"


def lidc_xml(series_uid, sessions):
    """An XML document in the LIDC ``LidcReadMessage`` schema; ``sessions`` = [[mark xml, ...], ...]."""
    body = "".join(
        f"<readingSession><annotationVersion>3.12</annotationVersion>"
        f"<servicingRadiologistID>{1000 + i}</servicingRadiologistID>{''.join(marks)}</readingSession>"
        for i, marks in enumerate(sessions)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<LidcReadMessage uid="1.2.3" xmlns="http://www.nih.gov">'
        f"<ResponseHeader><Version>1.8.1</Version><SeriesInstanceUid>{series_uid}</SeriesInstanceUid>"
        f"</ResponseHeader>{body}</LidcReadMessage>"
    )
