"""The kvshim dashboard: a Databases page and a KV explorer, served by ``kvshim dashboard``.

from kvshim.dashboard import make_dashboard_app
app = make_dashboard_app(Databases(), admin_token=None)
"""

from __future__ import annotations

from kvshim.dashboard.app import make_dashboard_app, mount_dashboard

__all__ = ["make_dashboard_app", "mount_dashboard"]
