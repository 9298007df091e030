/*
 * png_writer.h — a minimal PNG encoder for the demo's images.
 *
 * Writes 8-bit grayscale or RGB images without compression: the zlib stream holds
 * "stored" deflate blocks only, so the encoder needs no compression library.  The files
 * are larger than a compressing encoder would make them, which does not matter for a
 * handful of demo figures.
 */
#ifndef DAFL_DEMO_PNG_WRITER_H
#define DAFL_DEMO_PNG_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* The value of each format is its number of bytes per pixel. */
typedef enum png_pixel_format {
    PNG_FORMAT_GRAY8 = 1, /* one byte per pixel, 0 = black             */
    PNG_FORMAT_RGB8 = 3   /* three bytes per pixel: red, green, blue    */
} png_pixel_format;

/* Writes `width` x `height` pixels (rows top to bottom, tightly packed, no padding) to
 * `path` as a PNG file.  Returns 0, or -1 with errno set (EINVAL for a zero or too large
 * size or an unknown format, ENOMEM, or whatever opening or writing the file set). */
int png_write_image(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    png_pixel_format format);

/* CRC-32 as PNG chunks use it (ISO 3309, reflected polynomial 0xEDB88320).  Start with
 * crc = 0; pass the previous result to continue over more data. */
uint32_t png_crc32(uint32_t crc, const uint8_t *data, size_t size);

/* Adler-32 as the zlib stream trailer uses it.  Start with adler = 1. */
uint32_t png_adler32(uint32_t adler, const uint8_t *data, size_t size);

#endif /* DAFL_DEMO_PNG_WRITER_H */
