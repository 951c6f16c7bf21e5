"""Published AFLW2000-3D results (68 landmarks, NME % normalised by the box size sqrt(w*h), 3DDFA protocol).

Each row: method, NME per yaw bin [0,30), [30,60), [60,90] (None where the source gives none), the mean of
the three bins (the field's "mean", facerep's *balanced* column), and the source. The numbers are the
ones printed in the cited papers' AFLW2000-3D tables; methods trained on 300W-LP, scored on all 2,000
images with the crop from the ground-truth landmarks.
"""

from __future__ import annotations

from typing import NamedTuple


class PublishedNme(NamedTuple):
    """One published row; NMEs in percent."""

    method: str
    bins: tuple[float | None, float | None, float | None]
    mean: float
    source: str


#: Short source of each row -> the full reference (printed under the table).
REFERENCES: dict[str, str] = {
    "Zhu et al., CVPR 2016": "Zhu, Lei, Liu, Shi, Li: Face Alignment Across Large Poses: "
    "A 3D Solution, CVPR 2016",
    "Tran & Liu, CVPR 2018": "Tran, Liu: Nonlinear 3D Face Morphable Model, CVPR 2018",
    "Feng et al., ECCV 2018": "Feng, Wu, Shao, Wang, Zhou: Joint 3D Face Reconstruction and Dense "
    "Alignment with Position Map Regression Network (PRNet), ECCV 2018, Table 1",
    "Tu et al., IEEE TMM 2020": "Tu et al.: 3D Face Reconstruction from a Single Image Assisted by "
    "2D Face Images in the Wild (2DASL), IEEE Transactions on Multimedia 2020",
    "Guo et al., ECCV 2020": "Guo, Zhu, Yang, Yang, Lei, Li: Towards Fast, Accurate and Stable 3D "
    "Dense Face Alignment (3DDFA_V2), ECCV 2020",
}

AFLW2000_PUBLISHED: tuple[PublishedNme, ...] = (
    PublishedNme("SDM", (3.67, 4.94, 9.76), 6.12, "as reported by Zhu et al., CVPR 2016"),
    PublishedNme("3DDFA", (3.78, 4.54, 7.93), 5.42, "Zhu et al., CVPR 2016"),
    PublishedNme("Nonlinear 3DMM", (None, None, None), 4.70, "Tran & Liu, CVPR 2018"),
    PublishedNme("PRNet", (2.75, 3.51, 4.61), 3.62, "Feng et al., ECCV 2018"),
    PublishedNme("2DASL", (2.75, 3.46, 4.45), 3.55, "Tu et al., IEEE TMM 2020"),
    PublishedNme("3DDFA_V2", (2.63, 3.42, 4.48), 3.51, "Guo et al., ECCV 2020"),
)
