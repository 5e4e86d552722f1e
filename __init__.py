"""Raster Super-Resolution QGIS plugin."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin instance QGIS asks for.

    First puts the plugin's own package folder (where its PyTorch may live)
    on ``sys.path``, before anything imports torch.
    """
    from .plugin.torch_env import add_deps_dir, install_hint
    add_deps_dir()
    from .backend.torch_support import set_install_hint
    set_install_hint(install_hint())
    from .plugin.plugin import SuperResPlugin
    return SuperResPlugin(iface)
