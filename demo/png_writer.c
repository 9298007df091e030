/*
 * png_writer.c — a minimal PNG encoder (8-bit grayscale and RGB, stored deflate blocks).
 *
 * File layout: signature, IHDR, one IDAT holding a zlib stream, IEND.  The zlib stream is
 * a two-byte header, the filtered scanlines split into stored (uncompressed) deflate
 * blocks of at most 65535 bytes, and the Adler-32 of the scanlines.  Every scanline uses
 * filter type 0 (none), so the scanline data is the pixels with one zero byte in front.
 */
#include "png_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deflate's stored blocks carry a 16-bit length. */
#define STORED_BLOCK_MAX 65535u
/* Bytes a stored block adds in front of its data: BFINAL/BTYPE byte, LEN, NLEN. */
#define STORED_BLOCK_HEADER 5u
/* The largest chunk length PNG allows. */
#define PNG_CHUNK_MAX 0x7fffffffu
/* Chunk framing: length, type and CRC fields. */
#define CHUNK_OVERHEAD 12u
#define IHDR_DATA_SIZE 13u
/* Adler-32's modulus, and the most bytes that can be summed before s2 could overflow
 * 32 bits (so the slow modulo runs once per run of bytes instead of once per byte). */
#define ADLER_MODULUS 65521u
#define ADLER_RUN_MAX 5552u

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t png_crc32(uint32_t crc, const uint8_t *data, size_t size)
{
    /* Bit at a time: the images are small, and no lookup table needs building. */
    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            uint32_t low_bit_mask = 0u - (crc & 1u);
            crc = (crc >> 1) ^ (0xedb88320u & low_bit_mask);
        }
    }
    return ~crc;
}

uint32_t png_adler32(uint32_t adler, const uint8_t *data, size_t size)
{
    uint32_t sum_of_bytes = adler & 0xffffu;
    uint32_t sum_of_sums = adler >> 16;
    while (size > 0) {
        size_t run = size < ADLER_RUN_MAX ? size : ADLER_RUN_MAX;
        for (size_t i = 0; i < run; i++) {
            sum_of_bytes += data[i];
            sum_of_sums += sum_of_bytes;
        }
        sum_of_bytes %= ADLER_MODULUS;
        sum_of_sums %= ADLER_MODULUS;
        data += run;
        size -= run;
    }
    return (sum_of_sums << 16) | sum_of_bytes;
}

static uint8_t *put_u32_big_endian(uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t)(value >> 24);
    out[1] = (uint8_t)(value >> 16);
    out[2] = (uint8_t)(value >> 8);
    out[3] = (uint8_t)value;
    return out + 4;
}

/* Writes a chunk whose data the caller has already placed at out + 8; returns the end. */
static uint8_t *finish_chunk(uint8_t *out, const char type[4], uint32_t data_size)
{
    put_u32_big_endian(out, data_size);
    memcpy(out + 4, type, 4);
    /* The CRC covers the type and the data, not the length. */
    uint32_t crc = png_crc32(0, out + 4, 4 + (size_t)data_size);
    return put_u32_big_endian(out + 8 + data_size, crc);
}

/* Fills `out` with the scanlines split into stored deflate blocks; returns the end. */
static uint8_t *put_stored_blocks(uint8_t *out, const uint8_t *scanlines, size_t size)
{
    size_t offset = 0;
    do {
        size_t block = size - offset < STORED_BLOCK_MAX ? size - offset : STORED_BLOCK_MAX;
        int is_last = offset + block == size;
        /* BFINAL in bit 0, BTYPE 00 (stored); the header's remaining bits pad to a byte. */
        *out++ = (uint8_t)(is_last ? 1 : 0);
        *out++ = (uint8_t)(block & 0xff);
        *out++ = (uint8_t)(block >> 8);
        *out++ = (uint8_t)(~block & 0xff);
        *out++ = (uint8_t)((~block >> 8) & 0xff);
        memcpy(out, scanlines + offset, block);
        out += block;
        offset += block;
    } while (offset < size);
    return out;
}

static int write_whole_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen(path, "wb");
    if (file == NULL)
        return -1;
    size_t written = fwrite(data, 1, size, file);
    int write_errno = errno;
    if (fclose(file) != 0 || written != size) {
        /* Keep the first cause: a short write usually left it in errno. */
        errno = written != size && write_errno != 0 ? write_errno : EIO;
        return -1;
    }
    return 0;
}

int png_write_image(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    png_pixel_format format)
{
    if (path == NULL || pixels == NULL || width == 0 || height == 0 ||
        (format != PNG_FORMAT_GRAY8 && format != PNG_FORMAT_RGB8) ||
        width > PNG_CHUNK_MAX || height > PNG_CHUNK_MAX) {
        errno = EINVAL;
        return -1;
    }
    /* All sizes in 64 bits first: an image too large for one IDAT chunk is refused. */
    uint64_t row_bytes = (uint64_t)width * (uint64_t)format;
    uint64_t scanline_bytes = (uint64_t)height * (row_bytes + 1);
    uint64_t block_count = (scanline_bytes + STORED_BLOCK_MAX - 1) / STORED_BLOCK_MAX;
    uint64_t zlib_bytes = 2 + block_count * STORED_BLOCK_HEADER + scanline_bytes + 4;
    if (zlib_bytes > PNG_CHUNK_MAX) {
        errno = EINVAL;
        return -1;
    }
    uint64_t file_bytes = sizeof png_signature + (CHUNK_OVERHEAD + IHDR_DATA_SIZE) +
                          (CHUNK_OVERHEAD + zlib_bytes) + CHUNK_OVERHEAD;
    if (file_bytes > SIZE_MAX) {
        errno = EINVAL;
        return -1;
    }

    uint8_t *scanlines = malloc((size_t)scanline_bytes);
    uint8_t *file_data = malloc((size_t)file_bytes);
    if (scanlines == NULL || file_data == NULL) {
        free(scanlines);
        free(file_data);
        errno = ENOMEM;
        return -1;
    }
    for (uint64_t row = 0; row < height; row++) {
        uint8_t *line = scanlines + row * (row_bytes + 1);
        line[0] = 0; /* filter type "none" */
        memcpy(line + 1, pixels + row * row_bytes, (size_t)row_bytes);
    }

    uint8_t *out = file_data;
    memcpy(out, png_signature, sizeof png_signature);
    out += sizeof png_signature;

    uint8_t *ihdr = out;
    uint8_t *field = put_u32_big_endian(ihdr + 8, width);
    field = put_u32_big_endian(field, height);
    field[0] = 8;                                   /* bit depth                     */
    field[1] = format == PNG_FORMAT_RGB8 ? 2 : 0;   /* colour type: truecolour, grey */
    field[2] = 0;                                   /* compression method: deflate   */
    field[3] = 0;                                   /* filter method: adaptive       */
    field[4] = 0;                                   /* interlace: none               */
    out = finish_chunk(ihdr, "IHDR", IHDR_DATA_SIZE);

    uint8_t *idat = out;
    uint8_t *zlib = idat + 8;
    /* CMF 0x78: deflate with a 32 KiB window; FLG 0x01 makes CMF*256+FLG a multiple of
     * 31 and declares no preset dictionary and the "fastest" level. */
    zlib[0] = 0x78;
    zlib[1] = 0x01;
    uint8_t *zlib_end = put_stored_blocks(zlib + 2, scanlines, (size_t)scanline_bytes);
    put_u32_big_endian(zlib_end, png_adler32(1, scanlines, (size_t)scanline_bytes));
    out = finish_chunk(idat, "IDAT", (uint32_t)zlib_bytes);

    out = finish_chunk(out, "IEND", 0);

    int result = write_whole_file(path, file_data, (size_t)(out - file_data));
    int saved_errno = errno;
    free(scanlines);
    free(file_data);
    errno = saved_errno;
    return result;
}
