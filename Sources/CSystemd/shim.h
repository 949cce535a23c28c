#ifndef VOLUME_REAPER_CSYSTEMD_SHIM_H
#define VOLUME_REAPER_CSYSTEMD_SHIM_H
#include <systemd/sd-journal.h>
#include <systemd/sd-daemon.h>
#endif
