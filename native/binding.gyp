{
  "targets": [{
    "target_name": "rackboot",
    "sources": ["addon.c", "sendfile.c", "accept.c"],
    "cflags": ["-O2", "-Wall", "-Wextra"]
  }]
}
