/* Placeholder: replaced by the tessera command. */
#include <stdio.h>

int main(void)
{
    puts("tessera");
    return 0;
}
