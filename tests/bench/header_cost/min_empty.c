/* The floor for binary size: a C program that does nothing. */
int main(void) {
  return 0;
}
