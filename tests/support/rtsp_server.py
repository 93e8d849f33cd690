#!/usr/bin/python3
"""A real RTSP server on 127.0.0.1 for the tests: ``rtsp://127.0.0.1:PORT/test``, an H.264 test pattern.

GStreamer's RTSP server through the system Python's GObject bindings (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-base/-good/-ugly, gstreamer1.0-rtsp), so it runs
with ``/usr/bin/python3``, not the project's virtual environment: ``/usr/bin/python3 rtsp_server.py PORT``.
It prints ``ready <url>`` once it listens; kill it to make the camera's source vanish.
"""
import sys


def main(port: str) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 "
                       "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    print(f"ready rtsp://127.0.0.1:{port}/test", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv[1])
