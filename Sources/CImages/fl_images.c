#define _GNU_SOURCE
#include <unistd.h>

#include "fl_images.h"

int fl_images_syncfs(int fd) {
    return syncfs(fd);
}
