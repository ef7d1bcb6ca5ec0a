// Calls the two functions qtwayland-5.15-agnos.patch changes, in whichever
// libQt5WaylandClient and wayland-egl plugin it is given, and prints what they did:
//
//   geometry X Y WIDTH HEIGHT     QWaylandScreen::geometry()
//   EGL_PLATFORM VALUE            the variable after QWaylandEglClientBufferIntegration::initialize()
//
// No compositor is needed: the objects are zeroed memory. The patched geometry() returns
// its constant without reading the object; the patched initialize() takes the
// eglGetDisplay path, which sets EGL_PLATFORM=wayland, and fails harmlessly for want of
// a display. Unpatched code reads the zeroed fields and, for the EGL part, calls
// eglGetPlatformDisplay, which leaves the variable alone.
//
// usage: qtwayland-patch-check WAYLAND_EGL_PLUGIN   (libqt-plugin-wayland-egl.so)

#include <QtCore/QPluginLoader>
#include <QtCore/QStringList>
#include <QtWaylandClient/private/qwaylandclientbufferintegration_p.h>
#include <QtWaylandClient/private/qwaylandclientbufferintegrationplugin_p.h>
#include <QtWaylandClient/private/qwaylandscreen_p.h>

#include <cstdio>
#include <cstdlib>

using namespace QtWaylandClient;

// Stands in for a QWaylandScreen and a QWaylandDisplay: larger than either, all zero.
alignas(64) static unsigned char zeroed[1 << 16];

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s WAYLAND_EGL_PLUGIN\n", argv[0]);
        return 2;
    }
    // Qualified, so the call is not dispatched through the (zeroed) vtable pointer.
    const QRect r = reinterpret_cast<const QWaylandScreen *>(zeroed)->QWaylandScreen::geometry();
    std::printf("geometry %d %d %d %d\n", r.x(), r.y(), r.width(), r.height());
    std::fflush(stdout);

    QPluginLoader loader(QString::fromLocal8Bit(argv[1]));
    auto *plugin = qobject_cast<QWaylandClientBufferIntegrationPlugin *>(loader.instance());
    if (!plugin) {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], qPrintable(loader.errorString()));
        return 1;
    }
    QWaylandClientBufferIntegration *egl = plugin->create(QStringLiteral("wayland-egl"), QStringList());
    if (!egl) {
        std::fprintf(stderr, "%s made no wayland-egl integration\n", argv[1]);
        return 1;
    }
    unsetenv("EGL_PLATFORM");
    egl->initialize(reinterpret_cast<QWaylandDisplay *>(zeroed));
    const char *platform = std::getenv("EGL_PLATFORM");
    std::printf("EGL_PLATFORM %s\n", platform ? platform : "unset");
    return 0;
}
