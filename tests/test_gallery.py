"""The gallery figure: re-simulated images equal the stored ones; a PNG per class."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from darklens.config import load_config
from darklens.reporting.gallery import build_gallery, gallery_figure
from darklens.simulation.shards import simulate_shard
from test_figures import check_figure


def test_gallery_checks_the_class_file_and_writes_a_png(repo, tmp_path):
    from darklens.io.class_files import write_image_file

    sim = load_config(repo / "config.yaml")["simulation"]
    common = {k: v for k, v in sim.items() if k != "classes"}
    common.update(images_per_class=2, images_per_shard=2)
    common["instrument"] = {**common["instrument"], "n_pix": 24}
    data = simulate_shard(common, "cdm", sim["classes"]["cdm"], 0, 5)
    write_image_file(tmp_path / "cdm.h5", data, {"class_name": "cdm"})
    out = tmp_path / "gallery.png"
    gallery_figure(common, "cdm", sim["classes"]["cdm"], 5, out, 1, tmp_path / "cdm.h5")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # readable for tiny images: wide panels, colour bars, labels, no overlapping text
    fig = build_gallery(common, "cdm", sim["classes"]["cdm"], 5, 2, tmp_path / "cdm.h5")
    try:
        check_figure(fig)
        panels = [ax for ax in fig.get_axes() if not hasattr(ax, "_colorbar")]
        assert len(panels) == 8 and all(ax.get_xlabel() == "x [arcsec]" for ax in panels)
    finally:
        plt.close(fig)
    data["images"][0] += np.float32(1.0)
    write_image_file(tmp_path / "cdm.h5", data, {"class_name": "cdm"})
    with pytest.raises(ValueError, match="differs from its simulation"):
        gallery_figure(common, "cdm", sim["classes"]["cdm"], 5, out, 1, tmp_path / "cdm.h5")
