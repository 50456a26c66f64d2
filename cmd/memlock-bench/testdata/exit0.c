/* The process memlock-bench -exec starts in a loop (see exec.go): linked
 * statically, so that an iteration is fork, exec and exit and nothing else
 * (no dynamic loader, no shared libraries to map). */
int main(void)
{
	return 0;
}
