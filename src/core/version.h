/* version.h - the one place sked's version is written. */
#ifndef SKED_VERSION_H
#define SKED_VERSION_H
#define SKED_VERSION "0.1.0"
#endif
