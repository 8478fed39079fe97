"""The first-boot SKU tuning script (sku_tuning role): on a machine that is not an Azure VM (a local boot test)
it says so and exits 0, so the boot does not fail; on Azure it asks the instance metadata service for the size."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import types
from pathlib import Path

import jinja2
import pytest

TEMPLATE = Path(__file__).resolve().parent.parent.parent / "ansible/roles/sku_tuning/templates/builder-sku-tuning.py.j2"
SIZE = "Standard_ND96isr_H100_v5"


@pytest.fixture
def tuning(tmp_path, monkeypatch):
    """The rendered script as a module, its files moved under tmp_path, run without arguments (as the unit)."""
    module = types.ModuleType("builder_sku_tuning")
    exec(compile(jinja2.Template(TEMPLATE.read_text()).render(), str(TEMPLATE), "exec"), module.__dict__)
    module.CONFIG = str(tmp_path / "sku-tuning.json")
    module.NCCL_CONF = str(tmp_path / "nccl.conf")
    module.ASSET_TAG_FILE = str(tmp_path / "chassis_asset_tag")
    module.write_config = lambda url: Path(module.CONFIG).write_text(json.dumps({
        "imds_url": url, "topology_dir": str(tmp_path / "topo"),
        "skus": {SIZE: {"gpu_vendor": "nvidia", "nccl": {"NCCL_IB_PCI_RELAXED_ORDERING": "1"}}}}))
    monkeypatch.setattr(sys, "argv", ["builder-sku-tuning"])
    return module


@pytest.fixture
def imds():
    """A local stand-in for the metadata service that answers the VM size (only with the Metadata header)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.headers.get("Metadata") == "true"
            body = (SIZE if ok else "missing Metadata header").encode()
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/metadata/instance/compute/vmSize"
    server.shutdown()


def test_not_an_azure_vm_is_a_notice_not_a_failure(tuning, capsys):
    tuning.write_config("http://127.0.0.1:9/never-asked")
    assert tuning.main() == 0
    assert "not an Azure VM" in capsys.readouterr().out and not Path(tuning.NCCL_CONF).exists()
    Path(tuning.ASSET_TAG_FILE).write_text("Not Specified\n")  # QEMU's default
    assert tuning.main() == 0


def test_azure_vm_asks_the_metadata_service(tuning, imds, capsys):
    Path(tuning.ASSET_TAG_FILE).write_text(tuning.AZURE_ASSET_TAG + "\n")
    tuning.write_config(imds)
    assert tuning.main() == 0
    assert SIZE in capsys.readouterr().out
    assert "NCCL_IB_PCI_RELAXED_ORDERING=1" in Path(tuning.NCCL_CONF).read_text()


def test_azure_vm_without_metadata_fails_visibly(tuning, capsys):
    Path(tuning.ASSET_TAG_FILE).write_text(tuning.AZURE_ASSET_TAG + "\n")
    tuning.write_config("http://127.0.0.1:9/refused")
    assert tuning.main() == 1
    assert "metadata service did not give the VM size" in capsys.readouterr().err
    assert not Path(tuning.NCCL_CONF).exists()


def test_other_size_has_nothing_to_tune(tuning, capsys):
    tuning.write_config("http://127.0.0.1:9/never-asked")
    sys.argv = ["builder-sku-tuning", "Standard_F2s_v2"]  # restored by the fixture's monkeypatch
    assert tuning.main() == 0
    assert "nothing to tune" in capsys.readouterr().out and not Path(tuning.NCCL_CONF).exists()


def test_topology_file_is_azures_family_file(tuning, tmp_path, capsys):
    """#10: Azure's topology files are /opt/microsoft/<family>-topo.xml (ND H100/H200 v5: ndv5; Azure/azhpc-images
    components/setup_sku_customizations.sh:27-36 and customizations/ndv5.sh@67a1b094eeed). The script looked for
    <dir>/<vm size>/topo.xml, which no image has, so NCCL_TOPO_FILE was never set."""
    topo = tmp_path / "topo"
    topo.mkdir()
    (topo / "ndv5-topo.xml").write_text("<system/>\n")
    Path(tuning.CONFIG).write_text(json.dumps({
        "imds_url": "http://127.0.0.1:9/never-asked", "topology_dir": str(topo),
        "skus": {SIZE: {"gpu_vendor": "nvidia", "topology_family": "ndv5", "nccl": {}}}}))
    sys.argv = ["builder-sku-tuning", SIZE]
    assert tuning.main() == 0
    assert f"NCCL_TOPO_FILE={topo / 'ndv5-topo.xml'}" in Path(tuning.NCCL_CONF).read_text()


def test_target_sizes_name_azures_topology_family():
    from builder.catalog.loader import load_catalog
    from tests.conftest import REPO

    skus = load_catalog(REPO / "images").skus
    assert skus["Standard_ND96isr_H100_v5"].topology_family == "ndv5"
    assert skus["Standard_ND96isr_H200_v5"].topology_family == "ndv5"
    assert skus["Standard_NC96ads_A100_v4"].topology_family == "ncv4"
