/* The store front: replaced as the store is built. */
typedef int ts_store_placeholder;
