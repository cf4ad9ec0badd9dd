/* qfit — the version of this build (semantic versioning: MAJOR.MINOR.PATCH). */
#ifndef QFIT_VERSION_H
#define QFIT_VERSION_H

#define QFIT_VERSION "0.1.0"

#endif
