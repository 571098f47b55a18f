/*
 * Placeholders for the platform porting_example.c declares (mbedTLS,
 * FreeRTOS, RNG, RTC, flash, the application), so that
 * ffi/tests/firmware_link.rs can link the example for the Cortex-M4F and
 * prove it builds against libfieldauth.a with nothing unresolved. They do
 * no I/O and the image is not run; a real port links the real ones.
 */
#include <stddef.h>
#include <stdint.h>

typedef struct mbedtls_ssl_context mbedtls_ssl_context;
typedef uint32_t TickType_t;

/* Two prototypes' worth of stand-ins, each as small as the linker allows. */
int mbedtls_ssl_read(mbedtls_ssl_context *ssl, unsigned char *buf, size_t len);
int mbedtls_ssl_write(mbedtls_ssl_context *ssl, const unsigned char *buf, size_t len);
mbedtls_ssl_context *app_tls_connect(const char *host, uint16_t port);
void app_tls_close(mbedtls_ssl_context *ssl);
TickType_t xTaskGetTickCount(void);
void vTaskDelay(TickType_t ticks);
uint64_t app_random_u64(void);
uint64_t app_unix_ms(void);
size_t app_flash_read(uint8_t *buf, size_t len);
int app_flash_write(const uint8_t *buf, size_t len);
int app_has_work(void);
void app_consume(const uint8_t *data, size_t len);
void fieldauth_task(void *arg);
int main(void);

int mbedtls_ssl_read(mbedtls_ssl_context *ssl, unsigned char *buf, size_t len) {
    (void)ssl, (void)buf, (void)len;
    return -0x7880; /* peer closed */
}
int mbedtls_ssl_write(mbedtls_ssl_context *ssl, const unsigned char *buf, size_t len) {
    (void)ssl, (void)buf;
    return (int)len;
}
mbedtls_ssl_context *app_tls_connect(const char *host, uint16_t port) {
    (void)host, (void)port;
    return NULL;
}
void app_tls_close(mbedtls_ssl_context *ssl) { (void)ssl; }
static volatile TickType_t ticks;
TickType_t xTaskGetTickCount(void) { return ticks; }
void vTaskDelay(TickType_t n) { ticks += n; }
uint64_t app_random_u64(void) { return 0x5eedu; }
uint64_t app_unix_ms(void) { return 0; }
size_t app_flash_read(uint8_t *buf, size_t len) {
    (void)buf, (void)len;
    return 0;
}
int app_flash_write(const uint8_t *buf, size_t len) {
    (void)buf, (void)len;
    return 0;
}
int app_has_work(void) { return 1; }
void app_consume(const uint8_t *data, size_t len) { (void)data, (void)len; }

/* startup.c calls main: the "scheduler" runs the one task. */
int main(void) {
    fieldauth_task(NULL);
    return 0;
}
