/* clew.routes.template_of compiled (_route_template.c). */
#ifndef CLEW_ROUTE_TEMPLATE_H
#define CLEW_ROUTE_TEMPLATE_H

#include <Python.h>

/* The template of ``path`` (a new reference), None when only the Python function reads it
 * exactly (not ASCII, a percent escape), or NULL with an error (no memory). */
PyObject *route_template(PyObject *path);

#endif
