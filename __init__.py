"""Raster Super-Resolution QGIS plugin."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin instance QGIS asks for."""
    from .plugin.plugin import SuperResPlugin
    return SuperResPlugin(iface)
