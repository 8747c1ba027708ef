// A shared library that is not a pfa plugin: it lacks the entry symbol.
extern "C" __attribute__((visibility("default"))) int pfa_not_a_plugin_marker() { return 42; }
