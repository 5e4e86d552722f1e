"""The "Install PyTorch…" dialog: explains the choices, runs pip, shows its output."""
from pathlib import Path
from typing import Optional

from qgis.gui import QgsFileWidget
from qgis.PyQt import uic
from qgis.PyQt.QtCore import QProcess, QProcessEnvironment
from qgis.PyQt.QtWidgets import QButtonGroup, QDialogButtonBox, QRadioButton

from ..plugin import torch_installer as ti
from ..plugin.torch_env import deps_dir

FORM, BASE = uic.loadUiType(str(Path(__file__).with_suffix(".ui")))

INTRO = (
    "<p>The networks (dganet and the others) need <b>PyTorch</b>; the interpolation baselines "
    "(bicubic, bilinear, nearest) run without it.</p>"
    "<p>This installs PyTorch and safetensors with pip into a folder this plugin owns in your QGIS "
    "profile; QGIS's own Python is not changed, and its numpy is kept. Choose the CPU build unless "
    "this computer has an NVIDIA GPU. You may instead install PyTorch into QGIS's own Python "
    "yourself; the plugin finds it there too.</p>"
)


class TorchInstallDialog(BASE, FORM):
    """Pick a PyTorch build and install it with pip, watching pip's output.

    ``profile`` is the QGIS profile folder (default: the active one).
    """

    def __init__(self, parent=None, profile: Optional[Path] = None):
        super().__init__(parent)
        self.setupUi(self)
        self.target = deps_dir(profile)
        self.process: Optional[QProcess] = None
        self.python: Optional[str] = None
        self.installed_version = ""
        self.intro.setText(INTRO)
        self.group = QButtonGroup(self)
        self.radios = {}
        default = ti.default_variant()
        for i, variant in enumerate(ti.variants()):
            radio = QRadioButton(f"{variant.title}, {variant.size}")
            radio.setChecked(variant.key == default)
            self.choices_layout.insertWidget(i, radio)
            self.group.addButton(radio)
            self.radios[variant.key] = radio
        self.group.addButton(self.folder_radio)
        self.folder_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.target_label.setText(f"Into: {self.target}")
        from ..backend import torch_support as ts
        self.status_label.setText(f"PyTorch {ts.torch.__version__} is already importable." if ts.TORCH_AVAILABLE
                                  else f"PyTorch is not installed ({ts.TORCH_IMPORT_ERROR}).")
        self.install_button = self.buttons.addButton("Install", QDialogButtonBox.ButtonRole.ActionRole)
        self.install_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)

    def chosen(self) -> ti.Variant:
        """The variant the user picked."""
        if self.folder_radio.isChecked():
            folder = self.folder_widget.filePath()
            if not folder or not Path(folder).is_dir():
                raise ti.InstallError("Choose the folder that holds the torch and safetensors wheel files.")
            return ti.folder_variant(folder)
        key = next(k for k, radio in self.radios.items() if radio.isChecked())
        return next(v for v in ti.variants() if v.key == key)

    def start(self) -> None:
        """Find QGIS's Python and start pip; progress and errors show in the dialog."""
        try:
            variant = self.chosen()
            self.python = ti.find_python()
        except ti.InstallError as exc:
            self.fail(str(exc))
            return
        self.target.mkdir(parents=True, exist_ok=True)
        args = ["-m", "pip"] + ti.pip_arguments(self.target, variant, ti.numpy_constraint(self.target.parent))
        self.log_view.setPlainText(f"{self.python} {' '.join(args)}\n")
        self.status_label.setText(f"Installing {variant.title}: {variant.size}…")
        self.progress.setRange(0, 0)   # busy: pip reports no overall fraction
        self.install_button.setEnabled(False)
        self.process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.remove("PYTHONPATH")
        for key, value in variant.env:
            env.insert(key, value)
        self.process.setProcessEnvironment(env)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self.read_output)
        self.process.finished.connect(self.finished)
        self.process.errorOccurred.connect(self.process_error)
        self.process.start(self.python, args)

    def read_output(self) -> None:
        """Append pip's output; its step lines become the status."""
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        self.log_view.appendPlainText(text.rstrip("\n"))
        for line in text.splitlines():
            if line.startswith(("Collecting", "Downloading", "Installing collected", "Processing")):
                self.status_label.setText(line.strip())

    def process_error(self, error) -> None:
        """The interpreter could not start (or crashed)."""
        if error == QProcess.ProcessError.FailedToStart:
            self.fail(f"Could not start {self.python}: {self.process.errorString()}")

    def finished(self, exit_code: int, _status) -> None:
        """Check the result and say what happened in one line."""
        self.read_output()
        if exit_code != 0:
            self.fail(f"pip failed (exit {exit_code}): {ti.last_error(self.log_view.toPlainText())}")
            return
        try:
            self.installed_version = ti.check_installed(self.python, self.target)
        except ti.InstallError as exc:
            self.fail(str(exc))
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status_label.setText(f"PyTorch {self.installed_version} is installed in {self.target}. "
                                  "Restart QGIS to use it.")
        self.install_button.setEnabled(False)

    def fail(self, message: str) -> None:
        """Show one clear error; the full pip log stays above it."""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status_label.setText(f"Not installed. {message}")
        self.install_button.setEnabled(True)
